"""The console as an aiohttp sub-application, mounted at /admin/ by `bot.app.create_app`."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from aiohttp import web

from bot.clock import Clock
from console import (
    approval_pages,
    audit_pages,
    content_pages,
    dashboard,
    member_pages,
    rendering,
    security,
    signin_pages,
)
from console.staff import CLOCK, signed_in

STATIC = Path(__file__).parent / "static"
MAX_FORM_BYTES = 64 * 1024  # forms are a few fields; uploads get their own limit


def create_console(clock: Clock) -> web.Application:
    """Settings, the engine and its sessions come from the parent application."""
    console = web.Application(
        middlewares=[security.security_headers, rendering.not_found_page, signed_in],
        client_max_size=MAX_FORM_BYTES,
    )
    console[CLOCK] = clock
    console[dashboard.CHARTS] = OrderedDict()
    console.router.add_routes(signin_pages.routes)
    console.router.add_routes(dashboard.routes)
    console.router.add_routes(audit_pages.routes)
    console.router.add_routes(member_pages.routes)
    console.router.add_routes(approval_pages.routes)
    console.router.add_routes(content_pages.routes)
    console.router.add_static("/static/", STATIC, name="static", append_version=True)
    return console
