"""`绑定 <工号> <姓名>`: link this chat account to a member of the roster."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.messages import Sender
from bot.router import UsageError
from bot.textforms import parsed
from content.texts import render
from data import members
from data.models import Member
from handlers import router

FAILURE_LIMIT = 5
FAILURE_WINDOW = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class BindArgs:
    roster_id: str
    name: str


def parse_bind(args: str) -> BindArgs:
    parts = parsed(args).split()
    if len(parts) != 2:
        raise UsageError("bind_format")
    return BindArgs(parts[0], parts[1])


@router.command(
    "绑定",
    usage="绑定 <工号> <姓名>",
    summary="绑定本账号到花名册，如：绑定 1001 张三",
    role=None,
    parse=parse_bind,
)
async def bind(
    args: BindArgs, member: Member | None, session: AsyncSession, sender: Sender, clock: Clock
) -> str:
    if member is not None:
        return render("bind_already", name=member.name)
    now = clock.now()
    if await members.bind_failures_since(session, sender, now - FAILURE_WINDOW) >= FAILURE_LIMIT:
        return render("bind_throttled", minutes=int(FAILURE_WINDOW.total_seconds() // 60))
    target = await members.member_by_roster_id(session, args.roster_id)
    if target is None or target.name != args.name:
        await members.record_bind_failure(session, sender, now)
        return render("bind_failed")
    try:
        await members.bind(session, sender, target, now)
    except members.AlreadyBound:
        return render("bind_taken")
    branch = await members.branch_name(session, target.branch_id)
    return render("bind_done", name=target.name, branch=branch)
