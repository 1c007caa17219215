"""Activities as operations every door calls: publishing one (with its notice, its reminder
and an audit row), signing up with a capacity and a waiting list, leave."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.activity_codes import new_secret
from bot.clock import Clock
from bot.pushes import due_time
from bot.settings import Settings
from content.texts import render
from data import activities, audit
from data.models import Activity, ActivityKind, Attendance, AttendanceState, Member, PushKind, Role
from data.outbox import Push, enqueue, restore, withdraw

KIND_NAMES = {
    ActivityKind.GENERAL_MEETING: "支部党员大会",
    ActivityKind.COMMITTEE: "支委会",
    ActivityKind.GROUP_MEETING: "党小组会",
    ActivityKind.LECTURE: "党课",
    ActivityKind.PARTY_DAY: "主题党日",
    ActivityKind.TRAINING: "培训",
    ActivityKind.VOLUNTEER: "志愿活动",
    ActivityKind.OTHER: "其他",
}
# What people also call them.
KIND_WORDS = {name: kind for kind, name in KIND_NAMES.items()} | {
    "党员大会": ActivityKind.GENERAL_MEETING,
    "小组会": ActivityKind.GROUP_MEETING,
    "夜校": ActivityKind.TRAINING,
    "志愿": ActivityKind.VOLUNTEER,
    "志愿服务": ActivityKind.VOLUNTEER,
}
# Attended, these add their length to the day's study time.
STUDY_KINDS = frozenset({ActivityKind.LECTURE, ActivityKind.TRAINING})
MINUTES = range(10, 12 * 60 + 1)
TEXT_LIMIT = 100  # a title, a place


class Problem(StrEnum):
    """Why an activity could not be published or a sign-up taken (a template each)."""

    PAST = "past"
    NOT_FOUND = "not_found"  # no such activity, or not the member's to see
    STARTED = "started"  # too late to sign up or ask for leave
    NOT_OPEN = "not_open"  # no sign-up: the members are expected as they are
    ALREADY = "already"  # signed up (or waiting, on leave, present) before
    NOT_SIGNED_UP = "not_signed_up"
    TOO_EARLY = "too_early"  # 补签 before the sign-in window opens
    CLASH = "clash"  # overlaps another activity of the same branches or organiser


class Refused(Exception):
    def __init__(self, problem: Problem, **details: object) -> None:
        super().__init__(problem.value)
        self.problem = problem
        self.details = details

    def answer(self) -> str:
        return render(f"activity/{self.problem.value}", **self.details)


@dataclass(frozen=True)
class Draft:
    """An activity as its organiser described it, before it is published."""

    kind: ActivityKind
    starts_at: dt.datetime
    minutes: int
    place: str
    title: str
    branch_ids: tuple[int, ...] = ()  # with `everyone` False and none given: the organiser's
    everyone: bool = False
    role: str | None = None
    capacity: int | None = None
    volunteer_minutes: int | None = None  # 志愿活动: None means its length

    @property
    def ends_at(self) -> dt.datetime:
        return self.starts_at + dt.timedelta(minutes=self.minutes)

    @property
    def credited_minutes(self) -> int:
        if self.kind is not ActivityKind.VOLUNTEER:
            return 0
        return self.minutes if self.volunteer_minutes is None else self.volunteer_minutes


def scope(member: Member) -> int | None:
    """The branch whose activities a staff member manages (None: an admin, every branch)."""
    return None if member.role == Role.ADMIN.value else member.branch_id


def audience_of(draft: Draft, organiser: Member) -> tuple[int, ...]:
    """The branches the activity expects: a secretary's own, whatever they asked."""
    if organiser.role != Role.ADMIN.value:
        return (organiser.branch_id,)
    if draft.everyone:
        return ()
    return draft.branch_ids or (organiser.branch_id,)


async def publish(
    session: AsyncSession,
    draft: Draft,
    organiser: Member,
    actor: audit.Actor,
    settings: Settings,
    clock: Clock,
) -> Activity:
    """Create the activity and queue its notice (now) and reminder (before the start) for
    the members it expects or invites. `Refused(PAST)` for a start that has gone by,
    `Refused(CLASH)` for a time taken (`refuse_clash`)."""
    now = clock.now()
    if draft.starts_at <= now:
        raise Refused(Problem.PAST)
    assert organiser.id is not None
    branches = audience_of(draft, organiser)
    await refuse_clash(session, draft.starts_at, draft.ends_at, branches, organiser, clock.zone)
    activity = Activity(
        kind=draft.kind.value,
        title=draft.title,
        place=draft.place,
        starts_at=draft.starts_at,
        ends_at=draft.ends_at,
        branch_id=branches[0] if len(branches) == 1 else None,
        role=draft.role if organiser.role == Role.ADMIN.value else None,
        capacity=draft.capacity,
        volunteer_minutes=draft.credited_minutes,
        organiser_id=organiser.id,
        secret=new_secret(),
        created_at=now,
    )
    await activities.add(session, activity, branches)
    notified = await _notify(session, activity, branches, settings, now)
    await audit.record(
        session,
        actor,
        "activity.create",
        object_type="activity",
        object_id=activity.id,
        branch_id=activity.branch_id,
        at=now,
        after={
            "kind": activity.kind,
            "title": activity.title,
            "starts_at": activity.starts_at.isoformat(),
            "minutes": draft.minutes,
            "place": activity.place,
            "branches": list(branches),
            "role": activity.role,
            "capacity": activity.capacity,
            "notified": notified,
        },
    )
    return activity


async def refuse_clash(
    session: AsyncSession,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    branches: tuple[int, ...],
    organiser: Member,
    zone: dt.tzinfo,
) -> None:
    """`Refused(CLASH)` naming the other activity when the time overlaps one that expects
    any of the same branches (`branches` empty: every branch) or has the same organiser:
    nobody can be at two at once. One ending as the other starts is no clash."""
    assert organiser.id is not None
    other = await activities.clashing(session, starts_at, ends_at, branches, organiser.id)
    if other is not None:
        kind_name = KIND_NAMES[ActivityKind(other.kind)]
        # Plain values: the answer may be written after the transaction has ended.
        named = {key: getattr(other, key) for key in ("id", "title", "starts_at", "ends_at")}
        raise Refused(Problem.CLASH, other=named, kind_name=kind_name, zone=zone)


def _push(activity: Activity, kind: PushKind, due: dt.datetime, zone: dt.tzinfo) -> Push:
    assert activity.id is not None
    name = KIND_NAMES[ActivityKind(activity.kind)]
    text = render(f"push_{kind.value}", activity=activity, kind_name=name, zone=zone)
    brief = render("push_brief", kind=kind.value, title=activity.title)
    day = activity.starts_at.astimezone(zone).date()
    return Push(0, kind, f"activity:{activity.id}", day, text, brief, due)


async def _notify(
    session: AsyncSession,
    activity: Activity,
    branches: tuple[int, ...],
    settings: Settings,
    now: dt.datetime,
) -> int:
    notice = _push(activity, PushKind.ACTIVITY, due_time(settings, now), settings.zone)
    reminder = _reminder(activity, settings, now)

    async def pushes() -> AsyncIterator[Push]:
        async for member_id in activities.audience_members(session, activity, branches):
            yield dataclasses.replace(notice, member_id=member_id)
            if reminder is not None and activity.capacity is None:
                yield dataclasses.replace(reminder, member_id=member_id)

    return await enqueue(session, pushes(), now)


def _reminder(activity: Activity, settings: Settings, now: dt.datetime) -> Push | None:
    """The reminder before the start, unless reminders are off or that moment has gone."""
    if not settings.activity_reminder_minutes:
        return None
    due = activity.starts_at - dt.timedelta(minutes=settings.activity_reminder_minutes)
    if due <= now:
        return None
    return _push(activity, PushKind.ACTIVITY_REMINDER, due, settings.zone)


async def visible(session: AsyncSession, activity_id: int, member: Member) -> Activity:
    """The activity when it expects or invites the member; `Refused(NOT_FOUND)` otherwise
    (another branch's activity and one that does not exist get the same answer)."""
    activity = await activities.get(session, activity_id)
    if activity is None:
        raise Refused(Problem.NOT_FOUND, activity_id=activity_id)
    branches = await activities.branch_ids(session, activity_id)
    if not activities.member_in_audience(member, activity, branches):
        raise Refused(Problem.NOT_FOUND, activity_id=activity_id)
    return activity


async def managed(session: AsyncSession, activity_id: int, member: Member) -> Activity:
    """The activity when the staff member may run it (its organiser, a secretary of its
    branch, an admin); `Refused(NOT_FOUND)` otherwise."""
    activity = await activities.get(session, activity_id)
    limit = scope(member)
    mine = activity is not None and (
        activity.organiser_id == member.id or limit is None or activity.branch_id == limit
    )
    if activity is None or not mine:
        raise Refused(Problem.NOT_FOUND, activity_id=activity_id)
    return activity


@dataclass(frozen=True)
class SignUp:
    activity: Activity
    state: AttendanceState
    ahead: int = 0  # waiting: how many wait before the member


async def register(
    session: AsyncSession,
    activity_id: int,
    member: Member,
    settings: Settings,
    now: dt.datetime,
) -> SignUp:
    """Sign the member up for an open activity: a place while there is one, else the
    waiting list. The reminder is queued for them."""
    activity = await _before_start(session, activity_id, member, now)
    if activity.capacity is None:
        raise Refused(Problem.NOT_OPEN, activity=activity)
    assert activity.id is not None and member.id is not None
    found = await activities.attendance_of(session, activity.id, member.id)
    if found is not None and found.state != AttendanceState.CANCELLED.value:
        raise Refused(Problem.ALREADY, activity=activity, state=found.state)
    taken = await activities.count_in(session, activity.id, activities.HOLDING_A_PLACE)
    state = AttendanceState.REGISTERED if taken < activity.capacity else AttendanceState.WAITING
    row = found or Attendance(activity_id=activity.id, member_id=member.id, state="", queued_at=now)
    row.state, row.queued_at = state.value, now
    session.add(row)
    await session.flush()
    if state is AttendanceState.WAITING:
        return SignUp(activity, state, await activities.waiting_ahead(session, row))
    await _remind(session, activity, member.id, settings, now)
    return SignUp(activity, state)


async def _remind(
    session: AsyncSession, activity: Activity, member_id: int, settings: Settings, now: dt.datetime
) -> None:
    """Queue the member's reminder (again, when they withdrew before and came back)."""
    reminder = _reminder(activity, settings, now)
    if reminder is None:
        return
    mine = dataclasses.replace(reminder, member_id=member_id)
    if not await enqueue(session, [mine], now):
        await restore(session, mine.key, mine.due_at)


def _reminder_key(activity: Activity, member_id: int, zone: dt.tzinfo) -> str:
    """The outbox key of the member's reminder of the activity (as `_push` makes it)."""
    day = activity.starts_at.astimezone(zone).date()
    ref = f"activity:{activity.id}"
    return Push(member_id, PushKind.ACTIVITY_REMINDER, ref, day, "", "", activity.starts_at).key


async def _unremind(
    session: AsyncSession, activity: Activity, member_id: int, settings: Settings, now: dt.datetime
) -> None:
    """The member will not come: their reminder, if still waiting, is skipped in the same
    transaction as the change of their attendance."""
    await withdraw(session, _reminder_key(activity, member_id, settings.zone), now)


async def cancel(
    session: AsyncSession,
    activity_id: int,
    member: Member,
    settings: Settings,
    now: dt.datetime,
) -> Member | None:
    """Withdraw the member's sign-up; the first on the waiting list moves up (returned,
    and told through the outbox)."""
    activity = await _before_start(session, activity_id, member, now)
    assert activity.id is not None and member.id is not None
    found = await activities.attendance_of(session, activity.id, member.id)
    signed_up = (AttendanceState.REGISTERED.value, AttendanceState.WAITING.value)
    if found is None or found.state not in signed_up:
        raise Refused(Problem.NOT_SIGNED_UP, activity=activity)
    held_a_place = found.state == AttendanceState.REGISTERED.value
    found.state = AttendanceState.CANCELLED.value
    session.add(found)
    await session.flush()
    await _unremind(session, activity, member.id, settings, now)
    return await _move_up(session, activity, settings, now) if held_a_place else None


async def _move_up(
    session: AsyncSession, activity: Activity, settings: Settings, now: dt.datetime
) -> Member | None:
    assert activity.id is not None and activity.capacity is not None
    taken = await activities.count_in(session, activity.id, activities.HOLDING_A_PLACE)
    if taken >= activity.capacity:
        return None
    first = await activities.first_waiting(session, activity.id)
    if first is None:
        return None
    first.state = AttendanceState.REGISTERED.value
    session.add(first)
    moved = await session.get(Member, first.member_id)
    text = render("activity/moved_up", activity=activity, zone=settings.zone)
    brief = render("push_brief", kind=PushKind.ACTIVITY.value, title=activity.title)
    day = activity.starts_at.astimezone(settings.zone).date()
    push = Push(
        first.member_id, PushKind.ACTIVITY, f"activity:{activity.id}:up", day, text, brief, now
    )
    await enqueue(session, [push], now)
    await _remind(session, activity, first.member_id, settings, now)
    return moved


async def ask_leave(
    session: AsyncSession,
    activity_id: int,
    member: Member,
    reason: str,
    settings: Settings,
    now: dt.datetime,
) -> Activity:
    """Record the member's leave (请假) from an activity that expects them, before it starts;
    their reminder is no longer sent."""
    activity = await _before_start(session, activity_id, member, now)
    assert activity.id is not None and member.id is not None
    found = await activities.attendance_of(session, activity.id, member.id)
    if activity.capacity is not None and (
        found is None or found.state != AttendanceState.REGISTERED.value
    ):
        raise Refused(Problem.NOT_SIGNED_UP, activity=activity)
    if found is not None and found.state == AttendanceState.LEAVE.value:
        raise Refused(Problem.ALREADY, activity=activity, state=found.state)
    row = found or Attendance(activity_id=activity.id, member_id=member.id, state="", queued_at=now)
    row.state, row.reason = AttendanceState.LEAVE.value, reason
    session.add(row)
    await _unremind(session, activity, member.id, settings, now)
    return activity


async def _before_start(
    session: AsyncSession, activity_id: int, member: Member, now: dt.datetime
) -> Activity:
    activity = await visible(session, activity_id, member)
    if activity.starts_at <= now:
        raise Refused(Problem.STARTED, activity=activity)
    return activity
