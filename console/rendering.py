"""The console's pages: Jinja2 templates next to this module, autoescaped HTML."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from console.security import Handler
from console.staff import STAFF
from content.texts import format_hours

TEMPLATES = Path(__file__).parent / "templates"


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters["hours"] = format_hours  # minutes as the chat writes hours: 90 -> "1.5"
    return env


def page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """A whole page; the signed-in staff member (with their CSRF token) is always at hand, and
    `static(name)` gives a static file's versioned address."""
    static = request.app.router["static"]

    def static_url(name: str) -> str:
        return str(static.url_for(filename=name))

    template_file = environment().get_template(f"{template}.html.j2")
    html = template_file.render(staff=request.get(STAFF), static=static_url, **context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


@web.middleware
async def not_found_page(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A 404 is a page in Chinese, the same whether the object does not exist or is outside
    the viewer's scope (so the answer reveals neither)."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return page(request, "not_found", 404)
