"""The console as an aiohttp sub-application, mounted at /admin/ by `bot.app.create_app`."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from aiohttp import web

from bot.clock import Clock
from console import (
    activity_pages,
    activity_record_pages,
    approval_pages,
    audit_pages,
    content_pages,
    dashboard,
    grading_pages,
    material_pages,
    member_pages,
    notice_pages,
    push_pages,
    rendering,
    report_pages,
    roster_pages,
    security,
    signin_pages,
)
from console.staff import CLOCK, signed_in

STATIC = Path(__file__).parent / "static"


def create_console(clock: Clock) -> web.Application:
    """Settings, the engine and its sessions come from the parent application."""
    # Bodies are bounded per route in `signed_in` (the root application's bound is the
    # one aiohttp applies to a sub-application's requests).
    console = web.Application(
        middlewares=[security.security_headers, rendering.not_found_page, signed_in]
    )
    console[CLOCK] = clock
    console[dashboard.CHARTS] = OrderedDict()
    console[material_pages.THUMBS] = OrderedDict()
    console[report_pages.CACHE] = {}
    console.router.add_routes(signin_pages.routes)
    console.router.add_routes(dashboard.routes)
    console.router.add_routes(audit_pages.routes)
    console.router.add_routes(member_pages.routes)
    console.router.add_routes(approval_pages.routes)
    console.router.add_routes(content_pages.routes)
    console.router.add_routes(roster_pages.routes)
    console.router.add_routes(push_pages.routes)
    console.router.add_routes(notice_pages.routes)
    console.router.add_routes(material_pages.routes)
    console.router.add_routes(report_pages.routes)
    console.router.add_routes(grading_pages.routes)
    console.router.add_routes(activity_pages.routes)
    console.router.add_routes(activity_record_pages.routes)
    console.router.add_static("/static/", STATIC, name="static", append_version=True)
    return console
