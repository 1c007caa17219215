"""`我的月报`: my month so far — study, goal days, streak, volunteering, notes, points."""

from __future__ import annotations

import datetime as dt

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.reports.bulletins import Context
from content.texts import render
from data import figures
from data.figures import Period
from data.models import Member
from handlers import router


@router.command("我的月报", "月报", usage="我的月报", summary="本月我的学习、志愿、笔记和积分")
async def my_month(
    member: Member, session: AsyncSession, today: dt.date, report_context: Context
) -> str:
    assert member.id is not None
    span = Period(today.replace(day=1), today)
    found = await figures.member_figures(
        session,
        span,
        report_context.zone,
        report_context.goal,
        report_context.rules.points.article_min_chars,
    )
    mine = found[member.id]
    branch = [m for m in found.values() if m.branch_id == member.branch_id]
    rank = 1 + sum(1 for m in branch if m.points > mine.points)
    return render(
        "my_report",
        today=today,
        me=mine,
        goal=report_context.goal,
        rank=rank,
        branch_size=len(branch),
    )
