"""Signing in and out: the code page that waits for the chat, one-time links, my sessions."""

from __future__ import annotations

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import signin
from bot.appkeys import SESSIONS, SETTINGS
from console import security
from console.rendering import page
from console.staff import CLOCK, STAFF
from data import audit, console
from data.db import transaction
from data.models import Member

routes = web.RouteTableDef()
WAIT_SECONDS = 3  # how often the code page looks again (a meta refresh: no script needed)


def _signed_in(request: web.Request, new: signin.NewSession) -> web.HTTPSeeOther:
    """The redirect into the console, carrying the new session's cookie (raise it)."""
    response = web.HTTPSeeOther("/admin/")
    seconds = int(signin.SESSION_LIFETIME.total_seconds())
    security.set_cookie(
        response, request.config_dict[SETTINGS], security.SESSION_COOKIE, new.token, seconds
    )
    response.del_cookie(security.SIGN_IN_COOKIE, path=security.COOKIE_PATH)
    return response


@routes.get("/login", name="login")
async def login(request: web.Request) -> web.StreamResponse:
    """Shows a code to send to the bot; reloads itself until the code was sent, then signs
    this browser in. The code belongs to this browser alone (its waiting cookie)."""
    now = request.app[CLOCK].now()
    ip, agent = security.client_ip(request), security.user_agent(request)
    waiting = request.cookies.get(security.SIGN_IN_COOKIE, "")[:100]
    started: signin.Started | None = None
    new: signin.NewSession | None = None
    async with transaction(request.config_dict[SESSIONS]) as session:
        under_way = await signin.pending(session, waiting, now) if waiting else None
        shown = under_way.code if under_way is not None and under_way.kind == "code" else ""
        if shown and under_way is not None and under_way.member_id:
            new = await signin.finish(
                session, waiting, kind="code", ip=ip, user_agent=agent, at=now
            )
            if new is not None:
                await _audit_sign_in(session, request, new, "code")
        elif not shown:
            started = await signin.show_code(session, ip=ip, user_agent=agent, at=now)
    # Committed: now answer (an exception raised inside would have rolled it back).
    if new is not None:
        raise _signed_in(request, new)
    code = started.code if started is not None else shown
    if not code:
        return page(request, "too_often", 429)
    response = page(
        request,
        "login",
        code=code,
        wait=WAIT_SECONDS,
        minutes=int(signin.CODE_LIFETIME.total_seconds() // 60),
    )
    if started is not None:
        seconds = int(signin.CODE_LIFETIME.total_seconds())
        settings = request.config_dict[SETTINGS]
        security.set_cookie(response, settings, security.SIGN_IN_COOKIE, started.token, seconds)
    return response


@routes.get("/link/{token}", name="link")
async def link(request: web.Request) -> web.StreamResponse:
    """A one-time link from the bot asks before it is used: opening a link (a preview, a
    scanner) must not spend it."""
    token = request.match_info["token"][:100]
    now = request.app[CLOCK].now()
    async with request.config_dict[SESSIONS]() as session:
        found = await signin.pending(session, token, now)
    if found is None or found.kind != "link":
        return page(request, "link_expired", 404)
    return page(request, "link", token=token)


@routes.post("/link/{token}", name="link-confirm")
async def link_confirm(request: web.Request) -> web.StreamResponse:
    token = request.match_info["token"][:100]
    now = request.app[CLOCK].now()
    ip, agent = security.client_ip(request), security.user_agent(request)
    async with transaction(request.config_dict[SESSIONS]) as session:
        new = await signin.finish(session, token, kind="link", ip=ip, user_agent=agent, at=now)
        if new is not None:
            await _audit_sign_in(session, request, new, "link")
    if new is None:
        return page(request, "link_expired", 404)
    raise _signed_in(request, new)


async def _audit_sign_in(
    session: AsyncSession, request: web.Request, new: signin.NewSession, how: str
) -> None:
    """Signing in is a staff action worth a line in the audit log (who, from where, how)."""
    member = await session.get(Member, new.member_id)
    assert member is not None
    actor = audit.Actor.of_member(member, audit.Door.CONSOLE, security.client_ip(request))
    await audit.record(
        session,
        actor,
        "console.sign_in",
        object_type="member",
        object_id=member.roster_id,
        branch_id=member.branch_id,
        at=request.app[CLOCK].now(),
        after={"how": how, "browser": signin.describe_browser(security.user_agent(request))},
    )


@routes.post("/logout", name="logout")
async def logout(request: web.Request) -> web.StreamResponse:
    staff = request[STAFF]
    assert staff.member.id is not None and staff.session.id is not None
    async with transaction(request.config_dict[SESSIONS]) as session:
        await console.end(
            session,
            request.app[CLOCK].now(),
            "logout",
            member_id=staff.member.id,
            session_id=staff.session.id,
        )
    response = web.HTTPSeeOther("/admin/login")
    response.del_cookie(security.SESSION_COOKIE, path=security.COOKIE_PATH)
    raise response


@routes.get("/sessions", name="sessions")
async def my_sessions(request: web.Request) -> web.StreamResponse:
    staff = request[STAFF]
    assert staff.member.id is not None
    now = request.app[CLOCK].now()
    async with request.config_dict[SESSIONS]() as session:
        rows = await console.live_sessions(session, staff.member.id, now, signin.SESSION_IDLE)
    listed = [
        {
            "id": row.id,
            "browser": signin.describe_browser(row.user_agent),
            "ip": row.ip,
            "last_seen": row.last_seen_at,
            "current": row.id == staff.session.id,
        }
        for row in rows
    ]
    return page(request, "sessions", sessions=listed, zone=now.tzinfo)


@routes.post("/sessions/{id:\\d{1,12}}/end", name="end-session")
async def end_session(request: web.Request) -> web.StreamResponse:
    """End one of my own sessions (another's id changes nothing: 404)."""
    staff = request[STAFF]
    assert staff.member.id is not None
    async with transaction(request.config_dict[SESSIONS]) as session:
        ended = await console.end(
            session,
            request.app[CLOCK].now(),
            "logout",
            member_id=staff.member.id,
            session_id=int(request.match_info["id"]),
        )
    if not ended:
        raise web.HTTPNotFound(text="no such session")
    raise web.HTTPSeeOther("/admin/sessions")
