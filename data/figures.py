"""Per-member figures over a period, aggregated by the database: the ground of scores,
rankings, bulletins and `我的月报`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, case, func
from sqlalchemy import select as core_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.db import run
from data.models import (
    Article,
    ArticleKind,
    ArticleRead,
    Branch,
    Material,
    Member,
    Note,
    PointsEntry,
    QuizAnswer,
    ReviewState,
    StudyEntry,
    VolunteerEntry,
)
from data.planned import planned


@dataclass(frozen=True)
class Period:
    """Local calendar days `first`…`last`, both included."""

    first: dt.date
    last: dt.date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def bounds(self, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
        """[start, end) as aware moments: local midnight of `first` and of the day after `last`."""
        start = dt.datetime.combine(self.first, dt.time(), zone)
        end = dt.datetime.combine(self.last + dt.timedelta(days=1), dt.time(), zone)
        return start, end


@dataclass
class MemberFigures:
    member_id: int
    roster_id: str
    name: str
    branch_id: int
    branch: str
    active_days: int  # days of the period the member belonged (joined mid-period: fewer)
    minutes: int = 0
    study_days: int = 0
    goal_days: int = 0
    longest_streak: int = 0
    volunteer_minutes: int = 0
    note_chars: int = 0
    article_weeks: int = 0
    quiz_answered: int = 0
    quiz_correct: int = 0
    lessons_read: int = 0
    points: int = 0


def longest_run(days: list[dt.date]) -> int:
    """The longest run of consecutive days (in any order, repeats allowed)."""
    best = run = 0
    previous: dt.date | None = None
    for day in sorted(set(days)):
        run = run + 1 if previous is not None and day - previous == dt.timedelta(days=1) else 1
        best = max(best, run)
        previous = day
    return best


async def members_in(
    session: AsyncSession, period: Period, zone: ZoneInfo
) -> dict[int, MemberFigures]:
    """Everyone who belonged to the organisation during the period, with their active days."""
    _, end = period.bounds(zone)
    statement = (
        select(
            Member.id,
            Member.roster_id,
            Member.name,
            Member.branch_id,
            Branch.name,
            Member.joined_at,
        )
        .join(Branch, col(Branch.id) == col(Member.branch_id))
        .where(Member.joined_at < end)
    )
    found: dict[int, MemberFigures] = {}
    for mid, roster_id, name, branch_id, branch, joined_at in await session.exec(statement):
        joined = joined_at.astimezone(zone).date()
        active = (period.last - max(period.first, joined)).days + 1
        found[mid] = MemberFigures(mid, roster_id, name, branch_id, branch, active)
    return found


async def member_figures(
    session: AsyncSession,
    period: Period,
    zone: ZoneInfo,
    goal: int,
    article_chars: int,
) -> dict[int, MemberFigures]:
    """Every member's figures for the period (members with no activity have zeros)."""
    figures = await members_in(session, period, zone)
    start, end = period.bounds(zone)
    in_days = (StudyEntry.day >= period.first, StudyEntry.day <= period.last)

    daily = (
        select(
            StudyEntry.member_id.label("member_id"),  # type: ignore[attr-defined]
            StudyEntry.day.label("day"),  # type: ignore[attr-defined]
            func.sum(StudyEntry.minutes).label("total"),
        )
        .where(*in_days)
        .group_by(col(StudyEntry.member_id), col(StudyEntry.day))
        .subquery()
    )
    study = select(
        daily.c.member_id,
        func.sum(daily.c.total),
        func.count(),
        func.sum(case((daily.c.total >= goal, 1), else_=0)),
    ).group_by(daily.c.member_id)
    for mid, minutes, days, goal_days in await session.exec(study):
        if mid in figures:
            row = figures[mid]
            row.minutes, row.study_days, row.goal_days = int(minutes), int(days), int(goal_days)

    goal_days_list = (
        select(daily.c.member_id, daily.c.day)
        .where(daily.c.total >= goal)
        .order_by(daily.c.member_id, daily.c.day)
    )
    runs: dict[int, list[dt.date]] = {}
    for mid, day in await session.exec(goal_days_list):
        runs.setdefault(mid, []).append(day)
    for mid, days_at_goal in runs.items():
        if mid in figures:
            figures[mid].longest_streak = longest_run(days_at_goal)

    volunteer = (
        select(VolunteerEntry.member_id, func.sum(VolunteerEntry.minutes))
        .where(
            VolunteerEntry.state == ReviewState.APPROVED.value,
            VolunteerEntry.day >= period.first,
            VolunteerEntry.day <= period.last,
        )
        .group_by(col(VolunteerEntry.member_id))
    )
    for mid, minutes in await session.exec(volunteer):
        if mid in figures:
            figures[mid].volunteer_minutes = int(minutes)

    in_note_days = (Note.day >= period.first, Note.day <= period.last)
    notes = (
        select(Note.member_id, func.sum(Note.chars))
        .where(*in_note_days)
        .group_by(col(Note.member_id))
    )
    for mid, chars in await session.exec(notes):
        if mid in figures:
            figures[mid].note_chars = int(chars)
    articles = (
        select(Note.member_id, Note.day)
        .where(*in_note_days, Note.chars >= article_chars)
        .distinct()
    )
    weeks: dict[int, set[tuple[int, int]]] = {}
    for mid, day in await session.exec(articles):
        weeks.setdefault(mid, set()).add(day.isocalendar()[:2])
    for mid, found in weeks.items():
        if mid in figures:
            figures[mid].article_weeks = len(found)

    quiz = (
        select(
            QuizAnswer.member_id,
            func.count(),
            func.sum(case((col(QuizAnswer.correct).is_(True), 1), else_=0)),
        )
        .where(QuizAnswer.answered_at >= start, QuizAnswer.answered_at < end)
        .group_by(col(QuizAnswer.member_id))
    )
    for mid, answered, correct in await session.exec(quiz):
        if mid in figures:
            figures[mid].quiz_answered, figures[mid].quiz_correct = int(answered), int(correct)

    reads = (
        select(ArticleRead.member_id, func.count())
        .join(Article, col(Article.id) == col(ArticleRead.article_id))
        .where(
            Article.kind == ArticleKind.LESSON.value,
            ArticleRead.read_at >= start,
            ArticleRead.read_at < end,
        )
        .group_by(col(ArticleRead.member_id))
    )
    for mid, count in await session.exec(reads):
        if mid in figures:
            figures[mid].lessons_read = int(count)

    points = (
        select(PointsEntry.member_id, func.sum(PointsEntry.points))
        .where(PointsEntry.day >= period.first, PointsEntry.day <= period.last)
        .group_by(col(PointsEntry.member_id))
    )
    for mid, total in await session.exec(points):
        if mid in figures:
            figures[mid].points = int(total)
    return figures


async def branches(session: AsyncSession) -> dict[int, str]:
    return {bid: name for bid, name in await session.exec(select(Branch.id, Branch.name)) if bid}


async def materials_by_branch(session: AsyncSession, period: Period) -> dict[int, int]:
    statement = (
        select(Material.branch_id, func.count())
        .where(Material.day >= period.first, Material.day <= period.last)
        .group_by(col(Material.branch_id))
    )
    return {branch: int(count) for branch, count in await session.exec(statement)}


# One member's month, for `我的月报` per message: three statements built once (with bind
# parameters), each reading that member's rows through an index on (member, day) or
# (member, …). `member_figures(…, only=member)` gives the same figures with a dozen statements
# built per call, which cost 13 ms of Python a message at 10,000 members.
_STUDY = StudyEntry.__table__  # type: ignore[attr-defined]
_DAILY = (
    core_select(_STUDY.c.day, func.sum(_STUDY.c.minutes).label("total"))
    .where(
        _STUDY.c.member_id == bindparam("member_id"),
        _STUDY.c.day >= bindparam("first"),
        _STUDY.c.day <= bindparam("last"),
    )
    .group_by(_STUDY.c.day)
    .subquery()
)
_VOLUNTEER = VolunteerEntry.__table__  # type: ignore[attr-defined]
_NOTE = Note.__table__  # type: ignore[attr-defined]
_QUIZ = QuizAnswer.__table__  # type: ignore[attr-defined]
_READ = ArticleRead.__table__  # type: ignore[attr-defined]
_ARTICLE = Article.__table__  # type: ignore[attr-defined]
_LEDGER = PointsEntry.__table__  # type: ignore[attr-defined]


def _in_days(table: Any) -> tuple[Any, ...]:
    return (
        table.c.member_id == bindparam("member_id"),
        table.c.day >= bindparam("first"),
        table.c.day <= bindparam("last"),
    )


def _in_moments(column: Any) -> tuple[Any, ...]:
    return (column >= bindparam("start"), column < bindparam("end"))


_QUIZ_OF_MEMBER = (_QUIZ.c.member_id == bindparam("member_id"), *_in_moments(_QUIZ.c.answered_at))
_ONE_MEMBER = core_select(
    core_select(func.coalesce(func.sum(_DAILY.c.total), 0)).scalar_subquery(),
    core_select(func.count()).select_from(_DAILY).scalar_subquery(),
    core_select(func.count())
    .select_from(_DAILY)
    .where(_DAILY.c.total >= bindparam("goal"))
    .scalar_subquery(),
    core_select(func.coalesce(func.sum(_VOLUNTEER.c.minutes), 0))
    .where(*_in_days(_VOLUNTEER), _VOLUNTEER.c.state == ReviewState.APPROVED.value)
    .scalar_subquery(),
    core_select(func.coalesce(func.sum(_NOTE.c.chars), 0))
    .where(*_in_days(_NOTE))
    .scalar_subquery(),
    core_select(func.count()).where(*_QUIZ_OF_MEMBER).scalar_subquery(),
    core_select(func.count()).where(*_QUIZ_OF_MEMBER, _QUIZ.c.correct.is_(True)).scalar_subquery(),
    core_select(func.count())
    .select_from(_READ.join(_ARTICLE, _ARTICLE.c.id == _READ.c.article_id))
    .where(
        _READ.c.member_id == bindparam("member_id"),
        _ARTICLE.c.kind == ArticleKind.LESSON.value,
        *_in_moments(_READ.c.read_at),
    )
    .scalar_subquery(),
    core_select(func.coalesce(func.sum(_LEDGER.c.points), 0))
    .where(*_in_days(_LEDGER))
    .scalar_subquery(),
)
_ONE_MEMBER = planned(_ONE_MEMBER)
_GOAL_DAYS = core_select(_DAILY.c.day).where(_DAILY.c.total >= bindparam("goal"))
_GOAL_DAYS = planned(_GOAL_DAYS)
_ARTICLE_DAYS = (
    core_select(_NOTE.c.day).where(*_in_days(_NOTE), _NOTE.c.chars >= bindparam("chars")).distinct()
)
_ARTICLE_DAYS = planned(_ARTICLE_DAYS)


async def one_member(
    session: AsyncSession,
    member: Member,
    period: Period,
    zone: ZoneInfo,
    goal: int,
    article_chars: int,
) -> MemberFigures:
    """The member's figures for the period, as `member_figures` gives them (`branch`, the
    branch's name, is left empty: not read per message)."""
    assert member.id is not None
    start, end = period.bounds(zone)
    params = {
        "member_id": member.id,
        "first": period.first,
        "last": period.last,
        "start": start,
        "end": end,
        "goal": goal,
        "chars": article_chars,
    }
    joined = member.joined_at.astimezone(zone).date()
    active = max(1, (period.last - max(period.first, joined)).days + 1)
    found = MemberFigures(member.id, member.roster_id, member.name, member.branch_id, "", active)
    row = (await run(session, _ONE_MEMBER, params)).one()
    (
        found.minutes,
        found.study_days,
        found.goal_days,
        found.volunteer_minutes,
        found.note_chars,
        found.quiz_answered,
        found.quiz_correct,
        found.lessons_read,
        found.points,
    ) = (int(value) for value in row)
    goal_days = [day for (day,) in (await run(session, _GOAL_DAYS, params)).all()]
    found.longest_streak = longest_run(goal_days)
    article_days = [day for (day,) in (await run(session, _ARTICLE_DAYS, params)).all()]
    found.article_weeks = len({day.isocalendar()[:2] for day in article_days})
    return found
