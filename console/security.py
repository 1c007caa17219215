"""What every console response and request goes through: security headers, the client's
address, cookies, the same-origin check and CSRF tokens."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from bot.settings import Settings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SESSION_COOKIE = "qiyi_console"
SIGN_IN_COOKIE = "qiyi_signin"
COOKIE_PATH = "/admin/"
HEADERS = {
    # No inline script or style anywhere; nothing from another origin (consoles run on
    # intranets without internet, and a CDN is one more party to trust).
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as problem:
        response = problem
        decorate(response)
        raise
    decorate(response)
    return response


def decorate(response: web.StreamResponse) -> None:
    """The headers every console response carries (a streamed one: before `prepare`)."""
    response.headers.update(HEADERS)
    response.headers.setdefault("Cache-Control", "no-store")


def client_ip(request: web.Request) -> str:
    """The browser's address: the peer's, or — only when the peer is a reverse proxy on this
    machine — the last address the proxy put in X-Forwarded-For (what a client writes into
    that header itself comes before it and is ignored)."""
    peer = request.remote or ""
    try:
        local = ipaddress.ip_address(peer).is_loopback
    except ValueError:
        local = False
    forwarded = request.headers.get("X-Forwarded-For", "")[:500]
    if local and forwarded:
        last = forwarded.split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(last))
        except ValueError:
            return peer
    return peer


def user_agent(request: web.Request) -> str:
    return request.headers.get("User-Agent", "")[:300]


def secure_cookies(settings: Settings) -> bool:
    return bool(settings.public_url and settings.public_url.lower().startswith("https://"))


def set_cookie(
    response: web.StreamResponse, settings: Settings, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="Lax",
        secure=secure_cookies(settings),
    )


def same_origin(request: web.Request, settings: Settings) -> bool:
    """A POST comes from our own pages: its Origin (or Referer), when the browser sends one,
    names this host. Browsers send Origin with every cross-site POST."""
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source or source == "null":
        return source is None
    host = urlsplit(source).netloc
    allowed = {request.host}
    if settings.public_url:
        allowed.add(urlsplit(settings.public_url).netloc)
    return host in allowed


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())
