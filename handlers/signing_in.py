"""Signing in to an activity: `签到码 <编号>` gives the organiser the code of the moment,
members send `签到 1234` (or `签到 <编号> 1234` when two activities are open), and
`补签 <编号> <工号> <原因>` records someone present who could not sign in."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from bot import activity_codes, attendance
from bot.activities import KIND_NAMES, Refused, managed
from bot.clock import Clock
from bot.messages import Sender
from bot.router import UsageError
from bot.rules import PointsRules
from bot.settings import Settings
from bot.textforms import bounded_int, read
from content.texts import render
from data import audit
from data.models import Member, Role
from handlers import router
from handlers.activities import ACTIVITY_ID_DIGITS, REASON_LIMIT, parse_activity_id

ROSTER_ID_LIMIT = 50


@dataclass(frozen=True)
class CodeGiven:
    activity_id: int | None
    code: str


def parse_code(args: str) -> CodeGiven:
    words = read(args).text.split(" ")
    if len(words) > 2 or not words[-1].isascii() or not words[-1].isdigit():
        raise UsageError("sign_in_code")
    if len(words[-1]) != activity_codes.DIGITS:
        raise UsageError("sign_in_code")
    if len(words) == 1:
        return CodeGiven(None, words[0])
    activity_id = bounded_int(words[0].lstrip("#"), ACTIVITY_ID_DIGITS)
    if activity_id is None:
        raise UsageError("activity_id")
    return CodeGiven(activity_id, words[1])


@dataclass(frozen=True)
class Present:
    activity_id: int
    roster_id: str
    reason: str


def parse_present(args: str) -> Present:
    reading = read(args)
    words = reading.text.split(" ", 2)
    if len(words) < 3:
        raise UsageError("sign_in_for")
    activity_id = bounded_int(words[0].lstrip("#"), ACTIVITY_ID_DIGITS)
    if activity_id is None:
        raise UsageError("activity_id")
    if len(words[1]) > ROSTER_ID_LIMIT:
        raise UsageError("sign_in_for")
    reason = reading.source_from(len(words[0]) + len(words[1]) + 2).strip()
    if len(reason) > REASON_LIMIT:
        raise UsageError("leave_reason_long", most=REASON_LIMIT)
    return Present(activity_id, words[1], reason)


@router.command(
    "签到码",
    usage="签到码 <编号>",
    summary="签到时段取当前签到码（每2分钟更换）",
    role=Role.SECRETARY,
    parse=parse_activity_id,
)
async def show_code(
    args: int, member: Member, session: AsyncSession, settings: Settings, clock: Clock
) -> str:
    try:
        activity = await managed(session, args, member)
    except Refused as refused:
        return refused.answer()
    now = clock.now()
    opens, closes = attendance.window_of(activity, settings)
    if not opens <= now <= closes:
        return render("activity/code_closed", activity=activity, opens=opens, zone=clock.zone)
    return render(
        "activity/code",
        activity=activity,
        code=activity_codes.current_code(activity.secret, now),
        changes_at=activity_codes.changes_at(now),
        kinds=KIND_NAMES,
        zone=clock.zone,
    )


@router.command(
    "签到",
    usage="签到 [编号] <签到码>",
    summary="活动现场签到，如：签到 1234",
    parse=parse_code,
)
async def sign_in(
    args: CodeGiven,
    member: Member,
    session: AsyncSession,
    settings: Settings,
    clock: Clock,
    rules: PointsRules,
) -> str:
    done = await attendance.sign_in(
        session, member, args.activity_id, args.code, settings, clock, rules
    )
    return render(f"activity/sign_in_{done.outcome.value}", done=done, kinds=KIND_NAMES)


@router.command(
    "补签",
    usage="补签 <编号> <工号> <原因>",
    summary="为到场未能签到的人补签",
    role=Role.SECRETARY,
    parse=parse_present,
    max_chars=REASON_LIMIT + 80,
)
async def sign_in_for(
    args: Present,
    member: Member,
    session: AsyncSession,
    sender: Sender,
    settings: Settings,
    clock: Clock,
    rules: PointsRules,
) -> str:
    actor = audit.Actor.of_member(member, audit.Door.CHAT, sender.channel)
    try:
        done = await attendance.record_present(
            session,
            member,
            args.activity_id,
            args.roster_id,
            args.reason,
            actor,
            settings,
            clock,
            rules,
        )
    except Refused as refused:
        return refused.answer()
    return render("activity/signed_in_for", done=done)
