"""组织生活与活动: `活动` lists my upcoming activities (staff: and starts the guided dialog,
or publishes one from one line); `报名`, `取消报名` for open ones; `请假` before the start."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from bot import activities
from bot.activities import KIND_NAMES, Draft, Refused
from bot.clock import Clock
from bot.messages import Sender
from bot.router import UsageError
from bot.settings import Settings
from bot.textforms import bounded_int, read, typed
from content.texts import render
from data import activities as stored
from data import audit, dialogs, figures
from data.models import ActivityKind, Member, Role
from handlers import router
from handlers.activity_form import Form, parse_form

LIST_LIMIT = 10  # upcoming activities in one reply
ACTIVITY_ID_DIGITS = 9  # PostgreSQL integers: nine digits always fit
REASON_LIMIT = 200
LINE_LIMIT = 600  # a one-line activity: kind, time, options (branch names), place, title
DIALOG_STATE = "activity_draft"
DIALOG_WINDOW = dt.timedelta(minutes=30)  # each answer gives this long for the next


def is_staff(member: Member) -> bool:
    return Role(member.role).rank >= Role.SECRETARY.rank


def parse_activity_id(args: str) -> int:
    found = bounded_int(read(args).text.lstrip("#"), ACTIVITY_ID_DIGITS)
    if found is None:
        raise UsageError("activity_id")
    return found


@dataclass(frozen=True)
class Leave:
    activity_id: int
    reason: str


def parse_leave(args: str) -> Leave:
    reading = read(args)
    head, _, _ = reading.text.partition(" ")
    found = bounded_int(head.lstrip("#"), ACTIVITY_ID_DIGITS)
    if found is None:
        raise UsageError("activity_id")
    reason = reading.source_from(len(head)).strip()
    if not reason:
        raise UsageError("leave_reason")
    if len(reason) > REASON_LIMIT:
        raise UsageError("leave_reason_long", most=REASON_LIMIT)
    return Leave(found, reason)


async def upcoming(session: AsyncSession, member: Member, clock: Clock) -> str:
    found = await stored.upcoming_for(session, member, clock.now(), LIST_LIMIT)
    return render("activity/list", found=found, kinds=KIND_NAMES, zone=clock.zone)


async def draft_of(session: AsyncSession, form: Form, organiser: Member) -> Draft:
    """The draft a form describes; branch names are looked up (`UsageError` for unknown
    ones), and an audience other than their own branch is for admins only."""
    wider = form.everyone or form.branch_names or form.role is not None
    if wider and organiser.role != Role.ADMIN.value:
        raise UsageError("activity_audience_admin")
    branch_ids: tuple[int, ...] = ()
    if form.branch_names:
        found = {name: number for number, name in (await figures.branches(session)).items()}
        unknown = [name for name in form.branch_names if name not in found]
        if unknown:
            raise UsageError("activity_branch_unknown", names=unknown)
        branch_ids = tuple(found[name] for name in form.branch_names)
    return Draft(
        form.kind,
        form.starts_at,
        form.minutes,
        form.place,
        form.title,
        branch_ids,
        form.everyone,
        form.role,
        form.capacity,
        form.volunteer_minutes if form.kind is ActivityKind.VOLUNTEER else None,
    )


async def publish(
    session: AsyncSession,
    draft: Draft,
    member: Member,
    sender: Sender,
    settings: Settings,
    clock: Clock,
) -> str:
    actor = audit.Actor.of_member(member, audit.Door.CHAT, sender.channel)
    try:
        activity = await activities.publish(session, draft, member, actor, settings, clock)
    except Refused as refused:
        raise UsageError(f"activity_{refused.problem.value}", **refused.details) from None
    return render("activity/published", activity=activity, kinds=KIND_NAMES, zone=clock.zone)


@router.command(
    "活动",
    usage="活动",
    summary="我的近期活动；书记发“活动”按提示新建，或一句话新建",
    max_chars=LINE_LIMIT,
)
async def activity(
    args: str,
    member: Member,
    session: AsyncSession,
    sender: Sender,
    settings: Settings,
    clock: Clock,
) -> str:
    if not typed(args):
        listing = await upcoming(session, member, clock)
        if not is_staff(member):
            return listing
        assert member.id is not None
        until = clock.now() + DIALOG_WINDOW
        await dialogs.begin(session, member.id, DIALOG_STATE, {"step": "kind"}, until)
        return render("activity/ask_kind", listing=listing, kinds=KIND_NAMES.values())
    if not is_staff(member):
        return render("no_permission", command="活动")
    form = parse_form(args, clock.now())
    draft = await draft_of(session, form, member)
    return await publish(session, draft, member, sender, settings, clock)


@router.command(
    "报名",
    usage="报名 <编号>",
    summary="报名开放报名的活动（满员进候补）",
    parse=parse_activity_id,
)
async def register(
    args: int, member: Member, session: AsyncSession, settings: Settings, clock: Clock
) -> str:
    try:
        signed = await activities.register(session, args, member, settings, clock.now())
    except Refused as refused:
        return refused.answer()
    return render("activity/registered", signed=signed, zone=clock.zone)


@router.command(
    "取消报名",
    usage="取消报名 <编号>",
    summary="取消报名，候补的人递补",
    parse=parse_activity_id,
)
async def cancel(
    args: int, member: Member, session: AsyncSession, settings: Settings, clock: Clock
) -> str:
    try:
        await activities.cancel(session, args, member, settings, clock.now())
    except Refused as refused:
        return refused.answer()
    return render("activity/cancelled", activity_id=args)


@router.command(
    "请假",
    usage="请假 <编号> <原因>",
    summary="活动开始前请假",
    parse=parse_leave,
    max_chars=REASON_LIMIT + 20,
)
async def ask_leave(
    args: Leave, member: Member, session: AsyncSession, settings: Settings, clock: Clock
) -> str:
    try:
        found = await activities.ask_leave(
            session, args.activity_id, member, args.reason, settings, clock.now()
        )
    except Refused as refused:
        return refused.answer()
    return render("activity/leave", activity=found, reason=args.reason, zone=clock.zone)
