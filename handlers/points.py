"""`积分`: the member's lifelong points card."""

from __future__ import annotations

import datetime as dt

from sqlmodel.ext.asyncio.session import AsyncSession

from content.texts import render
from data import points
from data.models import Member
from handlers import router


@router.command("积分", usage="积分", summary="查看我的积分卡：总积分、本月积分和来源")
async def points_card(member: Member, session: AsyncSession, today: dt.date) -> str:
    assert member.id is not None
    card = await points.card(session, member.id, since=today.replace(day=1))
    return render(
        "points_card", name=member.name, total=card.total, month=card.since, sources=card.sources
    )
