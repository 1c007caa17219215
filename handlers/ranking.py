"""`排行`: this month's top members of my branch and the branch ranking by score so far."""

from __future__ import annotations

from bot.reports.standings import MonthStandings
from content.texts import render
from data.models import Member
from handlers import router

TOP_BRANCHES = 10


@router.command("排行", usage="排行", summary="本月本支部积分前列和各支部评分排名")
async def leaderboard(member: Member, standings: MonthStandings | None) -> str:
    # The standings of the whole organisation come computed (bot/reports/standings.py): this
    # reply reads them and queries nothing.
    if standings is None:
        return render("standings_busy")
    ranked = [b for b in standings.branches if b.rank is not None]
    own = standings.branch(member.branch_id)
    return render(
        "ranking",
        standings=standings,
        branch=own.branch if own else "",
        top=standings.top.get(member.branch_id, []),
        branches=ranked[:TOP_BRANCHES],
        position=own.rank if own else None,
        branch_count=len(ranked),
    )
