"""活动 in the console: the activities in scope with their sign-ups, presence and leave, and
the full-screen sign-in page — the code of the moment and a QR code of `签到 <编号> <码>`
(an SVG drawn on the server), refreshed by the page itself when the code changes (a meta
refresh: no script)."""

from __future__ import annotations

import datetime as dt
import io

import segno
from aiohttp import web
from markupsafe import Markup

from bot import activity_codes, attendance
from bot.activities import KIND_NAMES, Refused, managed
from bot.appkeys import SESSIONS, SETTINGS
from console.rendering import page
from console.staff import CLOCK, STAFF
from data import activities

routes = web.RouteTableDef()
SHOWN = 50
RECENT = dt.timedelta(days=31)  # ended activities still listed
OPENING_CHECK = 60  # seconds


def qr_svg(text: str) -> Markup:
    """`text` as a QR code, an inline SVG (no script, no external image)."""
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=10, border=2, xmldecl=False)
    # segno writes the SVG itself; the text is inside it as QR modules, never as markup.
    return Markup(out.getvalue().decode("utf-8"))


@routes.get("/activities", name="activities")
async def activity_list(request: web.Request) -> web.StreamResponse:
    staff = request[STAFF]
    clock = request.app[CLOCK]
    async with request.config_dict[SESSIONS]() as session:
        rows = await activities.listing(session, staff.branch_scope, clock.now() - RECENT, SHOWN)
    return page(request, "activities", rows=rows, kinds=KIND_NAMES, zone=clock.zone)


@routes.get(r"/activities/{activity_id:\d{1,9}}/code", name="activity-code")
async def sign_in_code(request: web.Request) -> web.StreamResponse:
    staff = request[STAFF]
    clock = request.app[CLOCK]
    settings = request.config_dict[SETTINGS]
    activity_id = int(request.match_info["activity_id"])
    async with request.config_dict[SESSIONS]() as session:
        try:
            activity = await managed(session, activity_id, staff.member)
        except Refused:
            raise web.HTTPNotFound() from None
    now = clock.now()
    opens, closes = attendance.window_of(activity, settings)
    if not opens <= now <= closes:
        # Before the window the screen looks again each minute, to show the code once open.
        refresh = OPENING_CHECK if now < opens else None
        return page(
            request,
            "activity_code",
            activity=activity,
            open=False,
            opens=opens,
            refresh=refresh,
            zone=clock.zone,
        )
    code = activity_codes.current_code(activity.secret, now)
    changes = activity_codes.changes_at(now)
    return page(
        request,
        "activity_code",
        activity=activity,
        open=True,
        code=code,
        qr=qr_svg(f"签到 {activity.id} {code}"),
        refresh=max(1, int((changes - now).total_seconds()) + 1),
        zone=clock.zone,
    )
