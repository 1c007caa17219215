"""月打分、季通报、年终结: the month's scores, the quarter's bulletin, the year's summary."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.reports.periods import PeriodKind, ReportPeriod
from bot.reports.scoring import BranchScore, score_branches, shared_ranks
from bot.rules import Rules
from data import figures, meeting_figures
from data.figures import MemberFigures, Period

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


async def month_report(
    session: AsyncSession, period: ReportPeriod, context: Context, until: dt.date | None = None
) -> MonthReport:
    """The month's scores; `until` cuts a month in progress at that day (for `排行`)."""
    assert period.kind is PeriodKind.MONTH
    span = period.span
    if until is not None and until < span.last:
        span = Period(span.first, max(span.first, until))
    found = await _figures(session, span, context)
    branches = await figures.branches(session)
    materials = await figures.materials_by_branch(session, span)
    meetings = await meeting_figures.meetings_by_branch(session, span, context.zone)
    scores = score_branches(
        found, branches, materials, span, context.goal, context.rules.scoring, meetings
    )
    return MonthReport(period, scores, _sorted_members(found), context.rules.scoring.weights())


async def _month_reports(
    session: AsyncSession, period: ReportPeriod, context: Context
) -> list[MonthReport]:
    return [await month_report(session, month, context) for month in period.months()]


def _period_branches(months: list[MonthReport]) -> list[PeriodBranch]:
    """Branches by the mean of their monthly scores over the period, ranked."""
    rows: dict[str, PeriodBranch] = {}
    for index, month in enumerate(months):
        for score in month.branches:
            row = rows.setdefault(score.branch, PeriodBranch(score.branch, 0, [None] * len(months)))
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
    session: AsyncSession, period: ReportPeriod, context: Context
) -> QuarterReport:
    assert period.kind is PeriodKind.QUARTER
    current = _period_branches(await _month_reports(session, period, context))
    previous = _period_branches(await _month_reports(session, period.previous(), context))
    before = {row.branch: row for row in previous}
    for row in current:
        if row.branch in before:
            row.previous_rank = before[row.branch].rank
            row.previous_score = before[row.branch].score
    ranked = [row for row in current if row.rank is not None]
    improved = [row for row in ranked if row.score_change is not None]
    most_improved = max(
        improved, key=lambda r: (r.score_change or 0.0, -(r.rank or 0)), default=None
    )
    if most_improved is not None and (most_improved.score_change or 0.0) <= 0:
        most_improved = None
    members = _sorted_members(await _figures(session, period.span, context))
    return QuarterReport(period, current, ranked[0] if ranked else None, most_improved, members)


async def year_report(session: AsyncSession, period: ReportPeriod, context: Context) -> YearReport:
    assert period.kind is PeriodKind.YEAR
    found = await _figures(session, period.span, context)
    reports = await _month_reports(session, period, context)
    branches = _period_branches(reports)
    months: list[MonthLine] = []
    for month, report in zip(period.months(), reports, strict=True):
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
    )
