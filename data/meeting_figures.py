"""组织生活 by branch over a period: meetings held by kind, and the attendance of the members
they expected (present, on leave), counted by the database."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_
from sqlmodel import and_, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.activities import HOLDING_A_PLACE
from data.figures import Period
from data.models import Activity, ActivityBranch, Attendance, AttendanceState, Branch, Member

# The kinds that are 组织生活 (三会一课 and 主题党日).
MEETING_KINDS = ("general_meeting", "committee", "group_meeting", "party_day", "lecture")


@dataclass
class MeetingFigures:
    held: dict[str, int] = field(default_factory=dict)  # kind -> meetings the branch held
    expected: int = 0  # attendances expected of the branch's members, over its meetings
    present: int = 0
    leave: int = 0

    @property
    def attendance(self) -> float | None:
        """Those present of those expected, leave apart (as the score counts it)."""
        due = self.expected - self.leave
        return self.present / due if due > 0 else None

    @classmethod
    def of(cls, found: dict[int, MeetingFigures], branch_id: int) -> MeetingFigures:
        return found.get(branch_id) or cls()


def _branch_expected():  # type: ignore[no-untyped-def]
    """An activity (in a query joining Activity and Branch) expects that branch."""
    named = select(ActivityBranch.branch_id).where(ActivityBranch.activity_id == Activity.id)
    return or_(~named.exists(), col(Branch.id).in_(named.scalar_subquery()))


async def meetings_by_branch(
    session: AsyncSession, period: Period, zone: ZoneInfo, kinds: Collection[str] = MEETING_KINDS
) -> dict[int, MeetingFigures]:
    """Each branch's meetings that started in the period and their attendance; empty when
    no branch held one."""
    start, end = period.bounds(zone)
    in_period = and_(
        col(Activity.starts_at) >= start,
        col(Activity.starts_at) < end,
        col(Activity.kind).in_(list(kinds)),
    )
    found: dict[int, MeetingFigures] = {}
    held = (
        select(Branch.id, Activity.kind, func.count())
        .select_from(Activity)
        .join(Branch, _branch_expected())
        .where(in_period)
        .group_by(col(Branch.id), col(Activity.kind))
    )
    for branch_id, kind, count in await session.exec(held):
        found.setdefault(branch_id, MeetingFigures()).held[kind] = int(count)
    if not found:
        return found
    # Expected without sign-up: the branch's members of the activity's role who belonged on
    # its day; with a sign-up: those holding a place.
    member_expected = and_(
        col(Member.branch_id) == Branch.id,
        or_(col(Activity.role).is_(None), col(Activity.role) == Member.role),
        col(Member.joined_at) <= Activity.starts_at,
        or_(col(Member.left_on).is_(None), col(Member.left_on) > func.date(Activity.starts_at)),
    )
    by_audience = (
        select(Branch.id, func.count())
        .select_from(Activity)
        .join(Branch, _branch_expected())
        .join(Member, member_expected)
        .where(in_period, col(Activity.capacity).is_(None))
        .group_by(col(Branch.id))
    )
    for branch_id, count in await session.exec(by_audience):
        found.setdefault(branch_id, MeetingFigures()).expected += int(count)
    states = (
        select(Member.branch_id, Attendance.state, func.count())
        .select_from(Attendance)
        .join(Activity, col(Activity.id) == Attendance.activity_id)
        .join(Member, col(Member.id) == Attendance.member_id)
        .where(in_period)
        .group_by(col(Member.branch_id), col(Attendance.state))
    )
    by_place = (
        select(Member.branch_id, func.count())
        .select_from(Attendance)
        .join(Activity, col(Activity.id) == Attendance.activity_id)
        .join(Member, col(Member.id) == Attendance.member_id)
        .where(
            in_period,
            col(Activity.capacity).is_not(None),
            col(Attendance.state).in_(HOLDING_A_PLACE),
        )
        .group_by(col(Member.branch_id))
    )
    for branch_id, count in await session.exec(by_place):
        found.setdefault(branch_id, MeetingFigures()).expected += int(count)
    for branch_id, state, count in await session.exec(states):
        figures = found.setdefault(branch_id, MeetingFigures())
        if state == AttendanceState.PRESENT.value:
            figures.present += int(count)
        elif state == AttendanceState.LEAVE.value:
            figures.leave += int(count)
    return found
