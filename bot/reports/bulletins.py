"""月打分、季通报、年终结: the month's scores, the quarter's bulletin, the year's summary."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.reports.activity_sheets import ActivitiesReport, month_activities
from bot.reports.periods import PeriodKind, ReportPeriod
from bot.reports.scoring import BranchScore, score_branches, shared_ranks
from bot.rules import Rules
from data import closed_months, figures, grades, meeting_figures
from data.figures import MemberFigures, Period
from data.models import ClosedMonth

TOP_MEMBERS = 10


@dataclass(frozen=True)
class Context:
    """What every report is computed with."""

    zone: ZoneInfo
    goal: int
    rules: Rules


@dataclass
class MonthReport:
    period: ReportPeriod
    branches: list[BranchScore]  # ranked
    members: list[MemberFigures]  # by branch, then points
    weights: dict[str, float]
    through: dt.date | None = None  # a month in progress, cut at this day (截至今日)
    closed_at: dt.datetime | None = None  # a closed month: the figures frozen then (final)
    # The documents' (`month_documents`): each activity's sheet and the 组织生活 table.
    activities: ActivitiesReport | None = None


@dataclass
class PeriodBranch:
    """A branch over a quarter or a year: the mean of its monthly scores, and its movement."""

    branch: str
    members: int
    monthly: list[float | None]
    score: float | None = None
    rank: int | None = None
    previous_rank: int | None = None
    previous_score: float | None = None

    @property
    def rank_change(self) -> int | None:
        """Places gained since the previous period (positive: moved up)."""
        if self.rank is None or self.previous_rank is None:
            return None
        return self.previous_rank - self.rank

    @property
    def score_change(self) -> float | None:
        if self.score is None or self.previous_score is None:
            return None
        return round(self.score - self.previous_score, 1)


@dataclass
class QuarterReport:
    period: ReportPeriod
    branches: list[PeriodBranch]  # ranked
    top: PeriodBranch | None
    most_improved: PeriodBranch | None
    members: list[MemberFigures]
    through: dt.date | None = None  # a quarter in progress, cut at this day (截至今日)


@dataclass
class MonthLine:
    month: str
    study_hours: float
    volunteer_hours: float
    mean_score: float | None


@dataclass
class YearReport:
    period: ReportPeriod
    members: int
    study_hours: float
    volunteer_hours: float
    note_chars: int
    lessons_read: int
    top_members: list[MemberFigures]
    branches: list[PeriodBranch]  # ranked by mean monthly score
    months: list[MonthLine] = field(default_factory=list)
    through: dt.date | None = None  # a year in progress, cut at this day (截至今日)

    @property
    def ranked_top_members(self) -> list[tuple[int, MemberFigures]]:
        """(rank, member) of the top members: equal points share a place (1, 1, 3)."""
        ranks = shared_ranks([m.points for m in self.top_members])
        return list(zip(ranks, self.top_members, strict=True))


def _sorted_members(found: dict[int, MemberFigures]) -> list[MemberFigures]:
    return sorted(found.values(), key=lambda m: (m.branch, -m.points, m.roster_id))


async def _figures(
    session: AsyncSession, span: Period, context: Context
) -> dict[int, MemberFigures]:
    return await figures.member_figures(
        session,
        span,
        context.zone,
        context.goal,
        context.rules.points.article_min_chars,
    )


def in_progress(period: ReportPeriod, today: dt.date) -> dt.date | None:
    """`today` when the period has begun and not ended (its figures are 截至今日), else None."""
    return today if period.span.first <= today < period.span.last else None


def _cut(span: Period, until: dt.date | None) -> Period:
    if until is not None and until < span.last:
        return Period(span.first, max(span.first, until))
    return span


async def month_report(
    session: AsyncSession, period: ReportPeriod, context: Context, until: dt.date | None = None
) -> MonthReport:
    """The month's scores; `until` cuts a month in progress at that day (for `排行`). A
    closed month's are the figures frozen when it was closed."""
    assert period.kind is PeriodKind.MONTH
    closing = await closed_months.closed(session, period.span.first)
    if closing is not None:
        return await _frozen_report(session, period, closing)
    span = _cut(period.span, until)
    found = await _figures(session, span, context)
    branches = await figures.branches(session)
    materials = await figures.materials_by_branch(session, span)
    graded = await grades.values_of_month(session, span.first)
    meetings = await meeting_figures.meetings_by_branch(session, span, context.zone)
    scores = score_branches(
        found, branches, materials, span, context.goal, context.rules.scoring, meetings, graded
    )
    through = span.last if span.last < period.span.last else None
    weights = context.rules.scoring.weights()
    return MonthReport(period, scores, _sorted_members(found), weights, through)


async def month_documents(
    session: AsyncSession, period: ReportPeriod, context: Context, until: dt.date | None = None
) -> MonthReport:
    """The month's report as its documents show it (`qiyi report month`, the console's
    报表): the scores with the month's activities — an attendance sheet each and the
    branches' 组织生活 (over the days the scores cover)."""
    report = await month_report(session, period, context, until)
    span = _cut(period.span, until)
    report.activities = await month_activities(session, period, context.zone, span)
    return report


async def _frozen_report(
    session: AsyncSession, period: ReportPeriod, closing: ClosedMonth
) -> MonthReport:
    scores = [
        BranchScore(
            row.branch_id, row.branch, row.members, json.loads(row.parts), row.score, row.rank
        )
        for row in await closed_months.frozen_scores(session, period.span.first)
    ]
    return MonthReport(
        period,
        scores,
        closed_months.frozen_members(closing),
        closed_months.frozen_weights(closing),
        closed_at=closing.closed_at,
    )


async def _month_reports(
    session: AsyncSession, period: ReportPeriod, context: Context, until: dt.date | None = None
) -> list[MonthReport]:
    """The reports of the period's months that have begun by `until` (all without it)."""
    return [
        await month_report(session, month, context, until)
        for month in period.months()
        if until is None or month.span.first <= until
    ]


def _period_branches(months: list[MonthReport], count: int | None = None) -> list[PeriodBranch]:
    """Branches by the mean of their monthly scores over the period (`count` months, of
    which `months` have begun; all of them by default), ranked."""
    count = len(months) if count is None else count
    rows: dict[str, PeriodBranch] = {}
    for index, month in enumerate(months):
        for score in month.branches:
            row = rows.setdefault(score.branch, PeriodBranch(score.branch, 0, [None] * count))
            row.monthly[index] = score.score
            row.members = max(row.members, score.members)
    for row in rows.values():
        scored = [s for s in row.monthly if s is not None]
        row.score = round(sum(scored) / len(scored), 1) if scored else None
    ranked = sorted(rows.values(), key=lambda r: (r.score is None, -(r.score or 0.0), r.branch))
    scored = [row for row in ranked if row.score is not None]
    for row, rank in zip(scored, shared_ranks([r.score for r in scored]), strict=True):
        row.rank = rank  # equal means share a place: 1, 1, 3
    return ranked


async def quarter_report(
    session: AsyncSession, period: ReportPeriod, context: Context, until: dt.date | None = None
) -> QuarterReport:
    """The quarter's bulletin; `until` cuts a quarter in progress at that day."""
    assert period.kind is PeriodKind.QUARTER
    months = await _month_reports(session, period, context, until)
    current = _period_branches(months, len(period.months()))
    before = period.previous()
    previous = _period_branches(
        await _month_reports(session, before, context), len(before.months())
    )
    earlier = {row.branch: row for row in previous}
    for row in current:
        if row.branch in earlier:
            row.previous_rank = earlier[row.branch].rank
            row.previous_score = earlier[row.branch].score
    ranked = [row for row in current if row.rank is not None]
    improved = [row for row in ranked if row.score_change is not None]
    most_improved = max(
        improved, key=lambda r: (r.score_change or 0.0, -(r.rank or 0)), default=None
    )
    if most_improved is not None and (most_improved.score_change or 0.0) <= 0:
        most_improved = None
    span = _cut(period.span, until)
    members = _sorted_members(await _figures(session, span, context))
    top = ranked[0] if ranked else None
    through = span.last if span.last < period.span.last else None
    return QuarterReport(period, current, top, most_improved, members, through)


async def year_report(
    session: AsyncSession, period: ReportPeriod, context: Context, until: dt.date | None = None
) -> YearReport:
    """The year's summary; `until` cuts a year in progress at that day."""
    assert period.kind is PeriodKind.YEAR
    span = _cut(period.span, until)
    found = await _figures(session, span, context)
    reports = await _month_reports(session, period, context, until)
    branches = _period_branches(reports, len(period.months()))
    months: list[MonthLine] = []
    for month, report in zip(period.months(), reports, strict=False):  # the months begun
        scored = [b.score for b in report.branches if b.score is not None]
        months.append(
            MonthLine(
                month.label,
                round(sum(m.minutes for m in report.members) / 60, 1),
                round(sum(m.volunteer_minutes for m in report.members) / 60, 1),
                round(sum(scored) / len(scored), 1) if scored else None,
            )
        )
    people = list(found.values())
    top = sorted(people, key=lambda m: (-m.points, -m.minutes, m.roster_id))[:TOP_MEMBERS]
    return YearReport(
        period,
        members=len(people),
        study_hours=round(sum(m.minutes for m in people) / 60, 1),
        volunteer_hours=round(sum(m.volunteer_minutes for m in people) / 60, 1),
        note_chars=sum(m.note_chars for m in people),
        lessons_read=sum(m.lessons_read for m in people),
        top_members=[m for m in top if m.points > 0],
        branches=branches,
        months=months,
        through=span.last if span.last < period.span.last else None,
    )
