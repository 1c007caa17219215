"""`提醒`: the member's evening study reminder — on, off, or at their own time."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.router import UsageError
from bot.settings import Settings
from bot.textforms import parsed
from content.texts import render
from data.models import Member
from handlers import router
from handlers.amounts import chinese_number

TURN_OFF = {"关闭", "关", "不要", "off"}
TURN_ON = {"开启", "开", "打开", "on"}
# Read in the parsed form (one space at most between parts), with bounded repeats only.
_TIME = re.compile(
    r"([0-9]{1,2}|[零一二两三四五六七八九十]{1,3}) ?(:|点|时) ?([0-9]{1,2}|半)? ?分?", re.ASCII
)
MORNING = ("早上", "上午", "早晨")
EVENING = ("晚上", "下午", "傍晚")


@dataclass(frozen=True)
class ReminderChoice:
    enable: bool | None = None  # None: leave as is
    at: dt.time | None = None  # a new time

    @property
    def shows_only(self) -> bool:
        return self.enable is None and self.at is None


def parse_time(text: str) -> dt.time | None:
    """ "21:00", "21点", "21点30", "九点半", "晚上9点", "早上7点" -> a time; None if not one.

    A spoken hour (with 点 or 时) from 1 to 11 is the evening one — this is the evening
    reminder — unless the member says 早上/上午.
    """
    morning = text.startswith(MORNING)
    text = text.removeprefix(next((p for p in (*MORNING, *EVENING) if text.startswith(p)), ""))
    match = _TIME.fullmatch(text.strip())
    if match is None:
        return None
    hour_text, separator, minute_text = match.groups()
    hour = int(hour_text) if hour_text.isdigit() else chinese_number(hour_text)
    minute = 30 if minute_text == "半" else int(minute_text or 0)
    if hour is None or not (0 <= hour < 24 and 0 <= minute < 60):
        return None
    if separator != ":" and 1 <= hour <= 11 and not morning:
        hour += 12
    return dt.time(hour, minute)


def parse_reminder(args: str) -> ReminderChoice:
    text = parsed(args).lower()
    if not text:
        return ReminderChoice()
    if text in TURN_OFF:
        return ReminderChoice(enable=False)
    if text in TURN_ON:
        return ReminderChoice(enable=True)
    at = parse_time(text)
    if at is None:
        raise UsageError("reminder_format")
    return ReminderChoice(enable=True, at=at)


@router.command(
    "提醒",
    usage="提醒 [开启|关闭|时间]",
    summary="每晚学习提醒：查看、开启、关闭或改时间，如：提醒 21:00",
    parse=parse_reminder,
)
async def reminder(
    args: ReminderChoice, member: Member, session: AsyncSession, settings: Settings
) -> str:
    if args.at is not None:
        quiet = settings.quiet
        if quiet and quiet.contains(args.at):
            raise UsageError("reminder_quiet", quiet=settings.quiet_hours)
        member.reminder_time = args.at
    if args.enable is not None:
        member.reminder_enabled = args.enable
    if not args.shows_only:
        session.add(member)
    at = member.reminder_time or settings.reminder_time
    return render(
        "reminder_status",
        enabled=member.reminder_enabled,
        at=at.strftime("%H:%M"),
        changed=not args.shows_only,
    )
