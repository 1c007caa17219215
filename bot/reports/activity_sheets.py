"""The month's attendance sheets: each activity with who it expected — present, on leave,
absent — by name, and the branches' 组织生活 figures (`qiyi report activities <month>`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.activities import KIND_NAMES
from bot.reports.periods import ReportPeriod
from content.texts import render
from data import activities, figures, meeting_figures
from data.figures import Period
from data.meeting_figures import MeetingFigures
from data.models import Activity, ActivityKind, AttendanceState


@dataclass(frozen=True)
class SheetRow:
    roster_id: str
    name: str
    branch: str
    state: str  # present | leave | "" (absent)


# Kinds by their stored value, as a report names them.
KINDS = {kind.value: name for kind, name in KIND_NAMES.items()}


@dataclass
class Sheet:
    activity: Activity
    kind: str
    rows: list[SheetRow] = field(default_factory=list)
    when: str = ""  # its local start and end, as the sheets show them

    def count(self, state: str) -> int:
        return sum(1 for row in self.rows if row.state == state)

    @property
    def present(self) -> int:
        return self.count(AttendanceState.PRESENT.value)

    @property
    def leave(self) -> int:
        return self.count(AttendanceState.LEAVE.value)

    @property
    def absent(self) -> int:
        return self.count("")

    @property
    def expected(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class ActivitiesReport:
    period: ReportPeriod
    sheets: list[Sheet]
    branches: dict[int, str]
    meetings: dict[int, MeetingFigures]


async def month_activities(
    session: AsyncSession, period: ReportPeriod, zone: ZoneInfo, span: Period | None = None
) -> ActivitiesReport:
    """The activities that start in the month (or in `span`, a month in progress cut at a
    day), each with its sheet, and the branches' 组织生活 over the same days."""
    span = span or period.span
    start, end = span.bounds(zone)
    branches = await figures.branches(session)
    sheets: list[Sheet] = []
    for activity in await activities.in_period(session, start, end):
        starts, ends = activity.starts_at.astimezone(zone), activity.ends_at.astimezone(zone)
        when = f"{starts:%Y-%m-%d %H:%M}—{ends:%H:%M}"
        sheet = Sheet(activity, KIND_NAMES[ActivityKind(activity.kind)], when=when)
        for roster_id, name, branch_id, state in await activities.sheet(session, activity, zone):
            sheet.rows.append(SheetRow(roster_id, name, branches.get(branch_id, ""), state))
        sheets.append(sheet)
    meetings = await meeting_figures.meetings_by_branch(session, span, zone)
    return ActivitiesReport(period, sheets, branches, meetings)


def render_activities(report: ActivitiesReport, zone: ZoneInfo) -> str:
    return render(
        "reports/activities.md",
        report=report,
        kinds=KINDS,
        meeting_kinds=meeting_figures.MEETING_KINDS,
        zone=zone,
    )
