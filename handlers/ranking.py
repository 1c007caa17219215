"""`排行`: this month's top members of my branch and the branch ranking by score so far."""

from __future__ import annotations

import datetime as dt

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.reports.bulletins import Context, month_report
from bot.reports.periods import PeriodKind, ReportPeriod
from content.texts import render
from data.models import Member
from handlers import router

TOP_MEMBERS = 5
TOP_BRANCHES = 10


@router.command("排行", usage="排行", summary="本月本支部积分前列和各支部评分排名")
async def leaderboard(
    member: Member, session: AsyncSession, today: dt.date, report_context: Context
) -> str:
    month = ReportPeriod(PeriodKind.MONTH, today.year, today.month)
    report = await month_report(session, month, report_context, until=today)
    mine = [m for m in report.members if m.branch_id == member.branch_id and m.points > 0]
    top = sorted(mine, key=lambda m: (-m.points, m.roster_id))[:TOP_MEMBERS]
    ranked = [b for b in report.branches if b.rank is not None]
    own = next((b for b in ranked if b.branch_id == member.branch_id), None)
    return render(
        "ranking",
        month=today,
        branch=own.branch if own else "",
        top=top,
        branches=ranked[:TOP_BRANCHES],
        position=own.rank if own else None,
        branch_count=len(ranked),
    )
