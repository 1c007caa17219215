"""`排行`: this month's top members of my branch and the branch ranking."""

from __future__ import annotations

import calendar
import datetime as dt

from sqlmodel.ext.asyncio.session import AsyncSession

from content.texts import render
from data import members, ranking
from data.models import Member
from handlers import router

TOP_MEMBERS = 5
TOP_BRANCHES = 10


def month_of(day: dt.date) -> tuple[dt.date, dt.date]:
    last = calendar.monthrange(day.year, day.month)[1]
    return day.replace(day=1), day.replace(day=last)


@router.command("排行", usage="排行", summary="本月本支部积分前列和各支部排名")
async def leaderboard(member: Member, session: AsyncSession, today: dt.date) -> str:
    first, last = month_of(today)
    branch = await members.branch_name(session, member.branch_id)
    branches = await ranking.branches(session, first, last)
    position = next((i for i, rank in enumerate(branches, 1) if rank.name == branch), None)
    return render(
        "ranking",
        month=first,
        branch=branch,
        top=await ranking.top_members(session, member.branch_id, first, last, TOP_MEMBERS),
        branches=branches[:TOP_BRANCHES],
        position=position,
        branch_count=len(branches),
    )
