"""概览: today at a glance for the signed-in secretary (their branch) or admin (everyone)."""

from __future__ import annotations

from aiohttp import web

from bot.appkeys import CONVERSATION, SESSIONS, SETTINGS
from bot.clock import today
from console.rendering import page
from console.staff import CLOCK, STAFF
from data import dashboard, members

routes = web.RouteTableDef()


@routes.get("/", name="dashboard")
async def overview(request: web.Request) -> web.StreamResponse:
    staff = request[STAFF]
    clock = request.app[CLOCK]
    settings = request.config_dict[SETTINGS]
    day = today(clock)
    async with request.config_dict[SESSIONS]() as session:
        figures = await dashboard.today(
            session, day, settings.daily_goal_minutes, staff.branch_scope
        )
        branch = await members.branch_name(session, staff.member.branch_id)
    # The month so far, the same standings `排行` shows (computed aside, kept a few minutes).
    standings = await request.config_dict[CONVERSATION].standings.month_so_far()
    ranked = [b for b in standings.branches if b.rank is not None] if standings else []
    own = standings.branch(staff.member.branch_id) if standings else None
    return page(
        request,
        "dashboard",
        day=day,
        figures=figures,
        goal=settings.daily_goal_minutes,
        branch=branch,
        standings=standings,
        ranked=ranked if staff.is_admin else [b for b in ranked if b is own],
        branch_count=len(ranked),
        zone=clock.zone,
    )
