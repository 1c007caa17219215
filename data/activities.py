"""Activities, the branches they expect and their attendance rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, exists, func, or_, update
from sqlalchemy import select as core_select
from sqlmodel import and_, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.audience import STREAM_CHUNK, _reachable
from data.db import insert_new, run
from data.models import (
    Activity,
    ActivityBranch,
    Attendance,
    AttendanceState,
    Material,
    Member,
)
from data.planned import planned

# A member signed up or expected without a sign-up: counted against the capacity.
HOLDING_A_PLACE = (
    AttendanceState.REGISTERED.value,
    AttendanceState.LEAVE.value,
    AttendanceState.PRESENT.value,
)


async def add(session: AsyncSession, activity: Activity, branch_ids: Sequence[int]) -> Activity:
    session.add(activity)
    await session.flush()
    assert activity.id is not None
    for branch_id in dict.fromkeys(branch_ids):
        session.add(ActivityBranch(activity_id=activity.id, branch_id=branch_id))
    return activity


async def clashing(
    session: AsyncSession,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    branch_ids: Sequence[int],
    organiser_id: int,
) -> Activity | None:
    """The earliest activity whose time overlaps [starts_at, ends_at) — one ending as the
    other starts does not — and that expects any of the branches (none given: every branch;
    an activity without branches expects them all) or has the same organiser."""
    same_people = col(Activity.organiser_id) == organiser_id
    if branch_ids:
        everyone = ~exists().where(ActivityBranch.activity_id == Activity.id)
        shared = exists().where(
            ActivityBranch.activity_id == Activity.id,
            col(ActivityBranch.branch_id).in_(list(branch_ids)),
        )
        same_people = or_(same_people, everyone, shared)
    statement = (
        select(Activity)
        .where(col(Activity.starts_at) < ends_at, col(Activity.ends_at) > starts_at)
        .order_by(col(Activity.starts_at), col(Activity.id))
        .limit(1)
    )
    if branch_ids:
        statement = statement.where(same_people)
    return (await session.exec(statement)).first()


def _names_branch(branch_id: int) -> ColumnElement[bool]:
    """The activity (in a query over `Activity`) names the branch among those it expects (as
    the console lists a secretary's activities)."""
    named = exists().where(
        ActivityBranch.activity_id == Activity.id, ActivityBranch.branch_id == branch_id
    )
    return or_(col(Activity.branch_id) == branch_id, named)


async def recorded_by(
    session: AsyncSession, member: Member, start: dt.datetime, end: dt.datetime, now: dt.datetime
) -> Activity | None:
    """The activity a staff member's material sent at `now` records: of those starting in
    [start, end) (the day) that they organise or that name their branch, the one that
    started last by `now`, else the first still to come."""
    mine = or_(col(Activity.organiser_id) == member.id, _names_branch(member.branch_id))
    statement = (
        select(Activity)
        .where(col(Activity.starts_at) >= start, col(Activity.starts_at) < end, mine)
        .order_by(col(Activity.starts_at), col(Activity.id))
    )
    found = list(await session.exec(statement))
    begun = [activity for activity in found if activity.starts_at <= now]
    return begun[-1] if begun else next(iter(found), None)


async def takes_in_branch(session: AsyncSession, activity: Activity, branch_id: int) -> bool:
    """Whether the activity expects or invites the branch (it names it, or every branch)."""
    assert activity.id is not None
    named = await branch_ids(session, activity.id)
    return activity.branch_id == branch_id or not named or branch_id in named


async def get(session: AsyncSession, activity_id: int) -> Activity | None:
    return await session.get(Activity, activity_id)


async def branch_ids(session: AsyncSession, activity_id: int) -> list[int]:
    statement = select(ActivityBranch.branch_id).where(ActivityBranch.activity_id == activity_id)
    return sorted(await session.exec(statement))


def _expects_member(member: Member) -> ColumnElement[bool]:
    """The activity (in a query over `Activity`) expects or invites this member."""
    any_branch = ~exists().where(ActivityBranch.activity_id == Activity.id)
    own_branch = exists().where(
        ActivityBranch.activity_id == Activity.id, ActivityBranch.branch_id == member.branch_id
    )
    role = or_(col(Activity.role).is_(None), col(Activity.role) == member.role)
    return and_(or_(any_branch, own_branch), role)


def member_in_audience(member: Member, activity: Activity, branches: Sequence[int]) -> bool:
    """Whether the activity's branches and role take in the member (a sign-up aside)."""
    in_branch = not branches or member.branch_id in branches
    in_role = activity.role is None or activity.role == member.role
    return member.left_on is None and in_branch and in_role


async def upcoming_for(
    session: AsyncSession, member: Member, now: dt.datetime, limit: int
) -> list[tuple[Activity, str | None]]:
    """The activities not over yet that expect or invite the member, soonest first, each
    with the member's attendance state (None: no row)."""
    state = (
        select(Attendance.state)
        .where(Attendance.activity_id == Activity.id, Attendance.member_id == member.id)
        .scalar_subquery()
    )
    statement = (
        select(Activity, state)
        .where(col(Activity.ends_at) > now, _expects_member(member))
        .order_by(col(Activity.starts_at), col(Activity.id))
        .limit(limit)
    )
    return [(activity, found) for activity, found in await session.exec(statement)]


_ACTIVITY = Activity.__table__  # type: ignore[attr-defined]
_BRANCHES = ActivityBranch.__table__  # type: ignore[attr-defined]
_ATTENDANCE = Attendance.__table__  # type: ignore[attr-defined]


def _open_for_sign_in_by() -> Select[Any]:
    """Activities whose sign-in window holds `now` (from `opens_before` the start to the
    end), each with whether its branches and role take in the member (`branch_id`, `role`)
    and whether the member holds a place in it (`member_id`)."""
    any_branch = ~exists().where(_BRANCHES.c.activity_id == _ACTIVITY.c.id)
    own_branch = exists().where(
        _BRANCHES.c.activity_id == _ACTIVITY.c.id,
        _BRANCHES.c.branch_id == bindparam("branch_id"),
    )
    in_role = or_(_ACTIVITY.c.role.is_(None), _ACTIVITY.c.role == bindparam("role"))
    holding = exists().where(
        _ATTENDANCE.c.activity_id == _ACTIVITY.c.id,
        _ATTENDANCE.c.member_id == bindparam("member_id"),
        _ATTENDANCE.c.state.in_(HOLDING_A_PLACE),
    )
    return (
        core_select(_ACTIVITY, and_(or_(any_branch, own_branch), in_role), holding)
        .where(
            _ACTIVITY.c.starts_at <= bindparam("opens_at"),
            _ACTIVITY.c.ends_at >= bindparam("now"),
        )
        .order_by(_ACTIVITY.c.starts_at, _ACTIVITY.c.id)
    )


# Asked on every sign-in: built once, run as Core (data.db.run) in one statement where the
# activities, then each one's branches, then the member's place took one each through the
# ORM.
_OPEN_FOR_SIGN_IN_BY = _open_for_sign_in_by()
_OPEN_FOR_SIGN_IN_BY = planned(_OPEN_FOR_SIGN_IN_BY)
_ACTIVITY_COLUMNS = tuple(column.name for column in _ACTIVITY.columns)


async def open_for_sign_in_by(
    session: AsyncSession, member: Member, now: dt.datetime, before: dt.timedelta
) -> list[tuple[Activity, bool]]:
    """The activities whose sign-in window (from `before` the start to the end) holds
    `now`, each with whether it expects the member: without a sign-up, when its branches
    and role take them in (`member_in_audience`); with one, when they hold a place in it.
    The activities are detached copies, for reading."""
    params = {
        "opens_at": now + before,
        "now": now,
        "branch_id": member.branch_id,
        "role": member.role,
        "member_id": member.id,
    }
    found: list[tuple[Activity, bool]] = []
    for row in await run(session, _OPEN_FOR_SIGN_IN_BY, params):
        activity = Activity(**dict(zip(_ACTIVITY_COLUMNS, row, strict=False)))
        in_audience, holding = row[len(_ACTIVITY_COLUMNS) :]
        if activity.capacity is None:
            expects = bool(in_audience) and member.left_on is None
        else:
            expects = bool(holding)
        found.append((activity, expects))
    return found


async def attendance_of(
    session: AsyncSession, activity_id: int, member_id: int
) -> Attendance | None:
    statement = select(Attendance).where(
        Attendance.activity_id == activity_id, Attendance.member_id == member_id
    )
    return (await session.exec(statement.with_for_update())).first()


async def count_in(session: AsyncSession, activity_id: int, states: Sequence[str]) -> int:
    statement = select(func.count()).where(
        Attendance.activity_id == activity_id, col(Attendance.state).in_(states)
    )
    return int((await session.exec(statement)).one())


async def waiting_ahead(session: AsyncSession, attendance: Attendance) -> int:
    """How many wait before this member on the activity's waiting list."""
    statement = select(func.count()).where(
        Attendance.activity_id == attendance.activity_id,
        Attendance.state == AttendanceState.WAITING.value,
        or_(
            col(Attendance.queued_at) < attendance.queued_at,
            and_(
                col(Attendance.queued_at) == attendance.queued_at,
                col(Attendance.id) < attendance.id,
            ),
        ),
    )
    return int((await session.exec(statement)).one())


async def first_waiting(session: AsyncSession, activity_id: int) -> Attendance | None:
    statement = (
        select(Attendance)
        .where(
            Attendance.activity_id == activity_id,
            Attendance.state == AttendanceState.WAITING.value,
        )
        .order_by(col(Attendance.queued_at), col(Attendance.id))
        .limit(1)
        .with_for_update()
    )
    return (await session.exec(statement)).first()


async def mark_present(
    session: AsyncSession,
    activity_id: int,
    member_id: int,
    at: dt.datetime,
    *,
    by: int | None = None,
    reason: str = "",
    over: Sequence[str] | None = None,
) -> bool:
    """Record the member present; False when they were already (the database decides, so two
    sign-ins at once count once) — or, when `over` names the states a row may be changed
    from, when their row is in another one."""
    row = {
        "activity_id": activity_id,
        "member_id": member_id,
        "state": AttendanceState.PRESENT.value,
        "queued_at": at,
        "reason": reason,
        "signed_in_at": at,
        "signed_in_by": by,
    }
    if await insert_new(session, Attendance, [row], ["activity_id", "member_id"]):
        return True
    changeable = (
        _ATTENDANCE.c.state != AttendanceState.PRESENT.value
        if over is None
        else _ATTENDANCE.c.state.in_(over)
    )
    changed = await run(
        session,
        update(_ATTENDANCE)
        .where(
            _ATTENDANCE.c.activity_id == activity_id,
            _ATTENDANCE.c.member_id == member_id,
            changeable,
        )
        .values(state=AttendanceState.PRESENT.value, signed_in_at=at, signed_in_by=by),
    )
    return bool(changed.rowcount)  # type: ignore[attr-defined]


_STATE_OF = core_select(_ATTENDANCE.c.state).where(
    _ATTENDANCE.c.activity_id == bindparam("activity_id"),
    _ATTENDANCE.c.member_id == bindparam("member_id"),
)
_STATE_OF = planned(_STATE_OF)


async def state_of(session: AsyncSession, activity_id: int, member_id: int) -> str | None:
    """The member's attendance state at the activity (None: no row)."""
    params = {"activity_id": activity_id, "member_id": member_id}
    return (await run(session, _STATE_OF, params)).scalar_one_or_none()


async def audience_members(
    session: AsyncSession, activity: Activity, branches: Sequence[int]
) -> AsyncIterator[int]:
    """The ids of the members the activity's branches and role take in who can be reached,
    streamed (for an open activity: those it invites to sign up)."""
    conditions: list[ColumnElement[bool]] = [_reachable()]
    if branches:
        conditions.append(col(Member.branch_id).in_(branches))
    if activity.role is not None:
        conditions.append(col(Member.role) == activity.role)
    statement = select(Member.id).where(*conditions).order_by(col(Member.id))
    result = await session.stream(statement.execution_options(yield_per=STREAM_CHUNK))
    async for (member_id,) in result:
        yield member_id


@dataclass(frozen=True)
class Listed:
    """An activity as the console lists it, with its counts."""

    activity: Activity
    signed: int  # signed up or present
    present: int
    leave: int
    materials: int  # 资料 linked to it (a secretary: their branch's)


async def listing(
    session: AsyncSession, branch_id: int | None, since: dt.datetime, limit: int
) -> list[Listed]:
    """Activities ending after `since` that expect the branch (None: every activity), the
    soonest first, each with how many signed up, are present and are on leave, and its
    materials."""

    def counted(*states: str):  # type: ignore[no-untyped-def]
        return (
            select(func.count())
            .where(Attendance.activity_id == Activity.id, col(Attendance.state).in_(states))
            .scalar_subquery()
        )

    linked = select(func.count()).where(Material.activity_id == Activity.id)
    if branch_id is not None:
        linked = linked.where(Material.branch_id == branch_id)
    statement = (
        select(
            Activity,
            counted(AttendanceState.REGISTERED.value, AttendanceState.PRESENT.value),
            counted(AttendanceState.PRESENT.value),
            counted(AttendanceState.LEAVE.value),
            linked.scalar_subquery(),
        )
        .where(col(Activity.ends_at) > since)
        .order_by(col(Activity.starts_at), col(Activity.id))
        .limit(limit)
    )
    if branch_id is not None:
        statement = statement.where(_names_branch(branch_id))
    rows = await session.exec(statement)
    return [Listed(a, int(s), int(p), int(n), int(m)) for a, s, p, n, m in rows]


async def in_period(session: AsyncSession, start: dt.datetime, end: dt.datetime) -> list[Activity]:
    """The activities that start in [start, end), in order."""
    statement = (
        select(Activity)
        .where(col(Activity.starts_at) >= start, col(Activity.starts_at) < end)
        .order_by(col(Activity.starts_at), col(Activity.id))
    )
    return list(await session.exec(statement))


async def sheet(
    session: AsyncSession, activity: Activity, zone: dt.tzinfo
) -> list[tuple[str, str, int, str]]:
    """(工号, name, branch id, state) of every member the activity expected — present,
    leave, or "" for absent — by branch and 工号. Without a sign-up: the members of its
    branches and role who belonged on its day; with one: those who held a place."""
    assert activity.id is not None
    state = func.coalesce(Attendance.state, "")
    joined = and_(Attendance.activity_id == activity.id, Attendance.member_id == Member.id)
    statement = select(Member.roster_id, Member.name, Member.branch_id, state).outerjoin(
        Attendance, joined
    )
    if activity.capacity is not None:
        statement = statement.where(col(Attendance.state).in_(HOLDING_A_PLACE))
    else:
        branches = await branch_ids(session, activity.id)
        day = activity.starts_at.astimezone(zone).date()
        statement = statement.where(
            col(Member.joined_at) <= activity.starts_at,
            or_(col(Member.left_on).is_(None), col(Member.left_on) > day),
        )
        if branches:
            statement = statement.where(col(Member.branch_id).in_(branches))
        if activity.role is not None:
            statement = statement.where(col(Member.role) == activity.role)
    statement = statement.order_by(col(Member.branch_id), col(Member.roster_id))
    return [
        (r, n, b, "" if s == AttendanceState.REGISTERED.value else s)
        for r, n, b, s in await session.exec(statement)
    ]
