"""概览: today at a glance for the signed-in secretary (their branch) or admin (everyone), and
the month's branch ranking as a chart."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import tzinfo

from aiohttp import web

from bot.appkeys import CONVERSATION, SESSIONS, SETTINGS
from bot.clock import today
from bot.delivery import CONFIGURATION
from bot.reports.chart import ranking_png
from bot.reports.documents import score_label
from bot.reports.periods import PeriodKind, ReportPeriod
from bot.reports.scoring import BranchScore
from bot.reports.standings import MonthStandings
from console.rendering import page
from console.staff import CLOCK, STAFF, Staff
from content.texts import render
from data import dashboard, members

routes = web.RouteTableDef()
# Read at 390 px in a phone's browser: the text stays legible at about half the width.
CHART_WIDTH_PX = 720
CHARTS_KEPT = 4  # one per standings computed; the newest is the one asked for
CHARTS = web.AppKey("charts", OrderedDict)  # type: ignore[type-arg]


def ranked(standings: MonthStandings | None) -> list[BranchScore]:
    return [b for b in standings.branches if b.rank is not None] if standings else []


def shown(standings: MonthStandings | None, staff: Staff) -> list[BranchScore]:
    """An admin sees every branch; a secretary their own (and its place)."""
    branches = ranked(standings)
    if staff.is_admin:
        return branches
    return [b for b in branches if b.branch_id == staff.member.branch_id]


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
        # A configuration error stops every push; only an admin can have it fixed.
        alerts = (
            await dashboard.configuration_alerts(session, day, CONFIGURATION)
            if staff.is_admin
            else []
        )
    # The month so far, the same standings `排行` shows (computed aside, kept a few minutes).
    standings = await request.config_dict[CONVERSATION].standings.month_so_far()
    own = standings.branch(staff.member.branch_id) if standings else None
    return page(
        request,
        "dashboard",
        day=day,
        figures=figures,
        goal=settings.daily_goal_minutes,
        branch=branch,
        standings=standings,
        ranked=shown(standings, staff),
        own=own,
        branch_count=len(ranked(standings)),
        alerts=alerts,
        alert_text=render("alert_configuration", errcodes=[a.errcode for a in alerts]),
        zone=clock.zone,
    )


@routes.get("/ranking.png", name="ranking_chart")
async def ranking_chart(request: web.Request) -> web.StreamResponse:
    """The admin's ranking of every branch as a picture, drawn in a thread (about 0.1 s of
    matplotlib) and kept while the standings it was drawn from are the newest."""
    if not request[STAFF].is_admin:
        raise web.HTTPNotFound()
    standings = await request.config_dict[CONVERSATION].standings.month_so_far()
    if standings is None:
        raise web.HTTPNotFound(text="本月评分正在统计，请稍后刷新。")
    charts = request.app[CHARTS]
    png = charts.get(standings.as_of)
    if png is None:
        zone = request.app[CLOCK].zone
        png = await asyncio.to_thread(_draw, standings, zone)
        charts[standings.as_of] = png
        while len(charts) > CHARTS_KEPT:
            charts.popitem(last=False)
    return web.Response(
        body=png,
        content_type="image/png",
        headers={"Cache-Control": "private, max-age=300"},
    )


def _draw(standings: MonthStandings, zone: tzinfo) -> bytes:
    at = standings.as_of.astimezone(zone)
    title = render("reports/heading_so_far", day=standings.day, at=at)
    month = ReportPeriod(PeriodKind.MONTH, standings.day.year, standings.day.month)
    rows = [(b.rank or 0, b.branch, b.score or 0.0) for b in ranked(standings)]
    return ranking_png(title, score_label(month), rows, CHART_WIDTH_PX)
