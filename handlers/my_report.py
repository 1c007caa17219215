"""`我的月报`: my month so far — study, goal days, streak, volunteering, notes, points."""

from __future__ import annotations

import datetime as dt

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.reports.bulletins import Context
from bot.reports.standings import MonthStandings
from content.texts import render
from data import figures
from data.figures import Period
from data.models import Member
from handlers import router


@router.command("我的月报", "月报", usage="我的月报", summary="本月我的学习、志愿、笔记和积分")
async def my_month(
    member: Member,
    session: AsyncSession,
    today: dt.date,
    report_context: Context,
    standings: MonthStandings | None,
) -> str:
    assert member.id is not None
    # My own figures, up to this message: queries of my rows only. My place in the branch
    # needs everyone's points: from the month's standings, computed off the loop.
    me = await figures.one_member(
        session,
        member,
        Period(today.replace(day=1), today),
        report_context.zone,
        report_context.goal,
        report_context.rules.points.article_min_chars,
    )
    place = standings.place(member.id) if standings is not None else None
    return render(
        "my_report",
        today=today,
        me=me,
        goal=report_context.goal,
        place=place,
        as_of=standings.as_of if standings is not None else None,
    )
