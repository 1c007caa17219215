"""`志愿 <小时> <内容>`: a member submits volunteer hours for review."""

from __future__ import annotations

import datetime as dt

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.router import UsageError
from content.texts import render
from data import volunteer
from data.models import Member
from handlers import router
from handlers.amounts import Amount, parse_amount

ENTRY_MINUTES = range(30, 24 * 60 + 1)
DESCRIPTION_LIMIT = 200


def parse_volunteer(args: str) -> Amount:
    amount = parse_amount(args, bare="hours")
    if amount is None:
        raise UsageError("volunteer_amount")
    if amount.minutes not in ENTRY_MINUTES:
        raise UsageError("volunteer_range")
    if not amount.rest:
        raise UsageError("volunteer_description")
    if len(amount.rest) > DESCRIPTION_LIMIT:
        raise UsageError("volunteer_description_long", most=DESCRIPTION_LIMIT)
    return amount


@router.command(
    "志愿",
    usage="志愿 <小时> <服务内容>",
    summary="提交志愿服务时长，如：志愿 2 陪社区老人体检",
    parse=parse_volunteer,
    max_chars=DESCRIPTION_LIMIT + 40,
)
async def submit_hours(
    args: Amount, member: Member, session: AsyncSession, clock: Clock, today: dt.date
) -> str:
    assert member.id is not None
    entry = await volunteer.submit(session, member.id, args.minutes, args.rest, today, clock.now())
    return render("volunteer_submitted", entry=entry)
