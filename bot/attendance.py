"""Signing in to an activity — with the rotating code, or by the organiser (补签) — and what
attendance credits: a 党课 or 培训's length as study time of its day, a 志愿活动's hours as
approved volunteer hours (the sign-in is the approval). Credits follow the change to
"present", which the database makes once, so a retried or repeated sign-in credits nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from sqlmodel.ext.asyncio.session import AsyncSession

from bot import activity_codes, awards
from bot.activities import STUDY_KINDS, Problem, Refused, managed
from bot.clock import Clock
from bot.rules import PointsRules
from bot.settings import Settings
from data import activities, audit, members, study, throttle
from data.models import Activity, ActivityKind, AttendanceState, Member, ReviewState, VolunteerEntry

DAY_MINUTES = 24 * 60
# Wrong codes a member may send in the window before they must wait: 4 digits are 10,000
# codes, two of them good at a time, so a guesser needs thousands of tries.
WRONG_CODES = 5
WRONG_CODE_WINDOW = dt.timedelta(minutes=10)
THROTTLE_SCOPE = "activity-code"


class Outcome(StrEnum):
    SIGNED_IN = "signed_in"
    REPEAT = "repeat"  # present already
    WRONG_CODE = "wrong_code"
    THROTTLED = "throttled"  # too many wrong codes lately
    CLOSED = "closed"  # no activity's sign-in is open now (or not this one's)
    NOT_EXPECTED = "not_expected"
    WHICH = "which"  # several activities open: name one
    ON_LEAVE = "on_leave"


@dataclass(frozen=True)
class SignIn:
    outcome: Outcome
    activity: Activity | None = None
    credit: Credit | None = None
    open_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Credit:
    study_minutes: int = 0
    volunteer_minutes: int = 0
    points: int = 0


def window_of(activity: Activity, settings: Settings) -> tuple[dt.datetime, dt.datetime]:
    opens = activity.starts_at - dt.timedelta(minutes=settings.activity_sign_in_minutes)
    return opens, activity.ends_at


def in_window(activity: Activity, settings: Settings, now: dt.datetime) -> bool:
    opens, closes = window_of(activity, settings)
    return opens <= now <= closes


async def _expects(session: AsyncSession, activity: Activity, member: Member) -> bool:
    assert activity.id is not None and member.id is not None
    if activity.capacity is None:
        branches = await activities.branch_ids(session, activity.id)
        return activities.member_in_audience(member, activity, branches)
    found = await activities.attendance_of(session, activity.id, member.id)
    return found is not None and found.state in activities.HOLDING_A_PLACE


async def _choose(
    session: AsyncSession,
    member: Member,
    activity_id: int | None,
    settings: Settings,
    now: dt.datetime,
) -> SignIn | Activity:
    before = dt.timedelta(minutes=settings.activity_sign_in_minutes)
    open_now = await activities.open_for_sign_in_by(session, member, now, before)
    if activity_id is not None:
        chosen = [(a, expects) for a, expects in open_now if a.id == activity_id]
        if not chosen:
            return SignIn(Outcome.CLOSED)
        activity, expects = chosen[0]
        return activity if expects else SignIn(Outcome.NOT_EXPECTED, activity)
    mine = [a for a, expects in open_now if expects]
    if len(mine) > 1:
        return SignIn(Outcome.WHICH, open_ids=tuple(a.id for a in mine if a.id is not None))
    if not mine:
        return SignIn(Outcome.NOT_EXPECTED if open_now else Outcome.CLOSED)
    return mine[0]


async def sign_in(
    session: AsyncSession,
    member: Member,
    activity_id: int | None,
    code: str,
    settings: Settings,
    clock: Clock,
    rules: PointsRules,
) -> SignIn:
    """Sign the member in with a code read from the organiser's screen."""
    assert member.id is not None
    now = clock.now()
    key = str(member.id)
    since = now - WRONG_CODE_WINDOW
    if await throttle.count_since(session, THROTTLE_SCOPE, key, since) >= WRONG_CODES:
        return SignIn(Outcome.THROTTLED)
    chosen = await _choose(session, member, activity_id, settings, now)
    if isinstance(chosen, SignIn):
        return chosen
    assert chosen.id is not None
    if not activity_codes.accepts(chosen.secret, code, now):
        throttle.note(session, THROTTLE_SCOPE, key, now)
        return SignIn(Outcome.WRONG_CODE, chosen)
    # Most sign-ins find no row (an activity without a sign-up): the insert is the whole
    # write. A row found may be a place signed up for (made present) or leave (kept).
    over = (AttendanceState.REGISTERED.value,)
    if not await activities.mark_present(session, chosen.id, member.id, now, over=over):
        state = await activities.state_of(session, chosen.id, member.id)
        if state == AttendanceState.LEAVE.value:
            return SignIn(Outcome.ON_LEAVE, chosen)
        if state != AttendanceState.PRESENT.value:  # the place given up meanwhile
            return SignIn(Outcome.NOT_EXPECTED, chosen)
        return SignIn(Outcome.REPEAT, chosen)
    credit = await _credit(session, chosen, member, settings, clock, rules, by_code(chosen))
    return SignIn(Outcome.SIGNED_IN, chosen, credit)


async def _credit(
    session: AsyncSession,
    activity: Activity,
    member: Member,
    settings: Settings,
    clock: Clock,
    rules: PointsRules,
    approval: Approval,
) -> Credit:
    kind = ActivityKind(activity.kind)
    if kind in STUDY_KINDS:
        return await _credit_study(session, activity, member, settings, clock, rules)
    if kind is ActivityKind.VOLUNTEER and activity.volunteer_minutes:
        return await _credit_volunteer(session, activity, member, settings, clock, rules, approval)
    return Credit()


@dataclass(frozen=True)
class Approval:
    """Who approves the volunteer hours an attendance credits: the organiser (补签), or the
    sign-in itself on the organiser's behalf (a code shown by them)."""

    actor: audit.Actor
    reviewer_id: int


def by_code(activity: Activity) -> Approval:
    actor = audit.Actor(audit.Door.SYSTEM, "sign-in code", "activity")
    return Approval(actor, activity.organiser_id)


async def _credit_study(
    session: AsyncSession,
    activity: Activity,
    member: Member,
    settings: Settings,
    clock: Clock,
    rules: PointsRules,
) -> Credit:
    assert member.id is not None and activity.id is not None
    day = activity.starts_at.astimezone(settings.zone).date()
    length = int((activity.ends_at - activity.starts_at).total_seconds()) // 60
    before = await study.day_so_far(session, member.id, day)
    minutes = min(length, DAY_MINUTES - before.minutes)  # within the day's limit
    if minutes <= 0:
        return Credit()
    now = clock.now()
    entry_id = await study.add_entry(
        session, member.id, day, minutes, activity.title[:200], now, activity_id=activity.id
    )
    so_far = study.DaySoFar(before.minutes + minutes, before.study_points)
    goal = settings.daily_goal_minutes
    progress = await awards.for_study(session, rules, goal, member.id, day, entry_id, so_far, now)
    return Credit(study_minutes=minutes, points=progress.points_gained)


async def _credit_volunteer(
    session: AsyncSession,
    activity: Activity,
    member: Member,
    settings: Settings,
    clock: Clock,
    rules: PointsRules,
    approval: Approval,
) -> Credit:
    assert member.id is not None and activity.id is not None
    now = clock.now()
    day = activity.starts_at.astimezone(settings.zone).date()
    entry = VolunteerEntry(
        member_id=member.id,
        minutes=activity.volunteer_minutes,
        description=activity.title[:200],
        day=day,
        state=ReviewState.APPROVED.value,
        reviewer_id=approval.reviewer_id,
        reviewed_at=now,
        created_at=now,
        activity_id=activity.id,
    )
    session.add(entry)
    await session.flush()
    assert entry.id is not None
    points = await awards.for_volunteer(
        session, rules, member.id, entry.id, entry.minutes, day, now
    )
    await audit.record(
        session,
        approval.actor,
        "volunteer.approve",
        object_type="volunteer",
        object_id=entry.id,
        branch_id=member.branch_id,
        at=now,
        before={"state": "", "member": member.roster_id},
        after={"state": entry.state, "points": points, "activity": activity.id},
    )
    return Credit(volunteer_minutes=entry.minutes, points=points)


@dataclass(frozen=True)
class Recorded:
    activity: Activity
    member: Member
    new: bool  # False: present already
    credit: Credit


async def record_present(
    session: AsyncSession,
    organiser: Member,
    activity_id: int,
    roster_id: str,
    reason: str,
    actor: audit.Actor,
    settings: Settings,
    clock: Clock,
    rules: PointsRules,
) -> Recorded:
    """补签: the organiser records a member present who could not sign in, from the sign-in
    window's opening on, with the reason; audited. `Refused(NOT_FOUND)` for an activity the
    organiser may not run or a member it does not expect; `Refused(TOO_EARLY)` before the
    sign-in window opens."""
    activity = await managed(session, activity_id, organiser)
    now = clock.now()
    if now < window_of(activity, settings)[0]:
        raise Refused(Problem.TOO_EARLY, activity=activity)
    member = await members.member_by_roster_id(session, roster_id)
    if member is None or not await _expects(session, activity, member):
        raise Refused(Problem.NOT_FOUND, activity_id=activity_id, roster_id=roster_id)
    assert activity.id is not None and member.id is not None
    new = await activities.mark_present(
        session, activity.id, member.id, now, by=organiser.id, reason=reason
    )
    credit = Credit()
    if new:
        assert organiser.id is not None
        approval = Approval(actor, organiser.id)
        credit = await _credit(session, activity, member, settings, clock, rules, approval)
        await audit.record(
            session,
            actor,
            "activity.sign_in",
            object_type="activity",
            object_id=activity.id,
            branch_id=member.branch_id,
            at=now,
            after={"member": member.roster_id, "reason": reason},
        )
    return Recorded(activity, member, new, credit)
