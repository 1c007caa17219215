"""通知: a notice to everyone, to some branches or to a role (a secretary: to their own
branch) — previewed as a member receives it, with how many it reaches by which rung, then
sent through the outbox once per member, audited."""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from bot import notices as notice_sending
from bot.appkeys import SESSIONS, SETTINGS
from bot.textforms import typed
from console.member_pages import ROLE_NAMES
from console.rendering import page
from console.staff import CLOCK, STAFF, Staff, actor_of
from data import directory, members, notices
from data.db import transaction
from data.notices import Audience

routes = web.RouteTableDef()
SHOWN = 30
RUNG_NAMES = {
    "window": "微信客服消息（48 小时内互动过）",
    "template": "微信模板消息",
    "mailbox": "留言箱（成员下次发消息时看到）",
    "qq": "QQ 私聊",
}


Form = MultiDictProxy[Any] | MultiDict[Any]


def _audience(form: Form, staff: Staff, known: set[int]) -> Audience | None:
    """The audience the form asks for, within the staff member's scope; None if it names a
    branch that is not there (or not theirs)."""
    if staff.branch_scope is not None:
        return Audience(branch_ids=(staff.branch_scope,))
    role = str(form.get("role", ""))
    chosen: list[int] = []
    for value in form.getall("branch", []):
        text = str(value)
        if not text.isascii() or not text.isdigit() or len(text) > 12:
            return None
        chosen.append(int(text))
    if any(branch_id not in known for branch_id in chosen):
        return None
    return Audience(
        branch_ids=tuple(sorted(set(chosen))), role=role if role in ROLE_NAMES else None
    )


async def _compose(
    request: web.Request,
    form: Form,
    *,
    problem: str = "",
    preview: Audience | None = None,
    status: int = 200,
) -> web.Response:
    """The form; with `preview` (the checked audience) the message and its reach too."""
    staff = request[STAFF]
    settings = request.config_dict[SETTINGS]
    now = request.app[CLOCK].now()
    text = typed(str(form.get("text", "")))
    async with request.config_dict[SESSIONS]() as session:
        branches = await directory.branches(session, staff.branch_scope)
        reach = None
        if preview is not None:
            reach = await notices.reach(
                session,
                preview,
                now,
                template=settings.template_for("notice") is not None,
                qq=settings.onebot_enabled,
            )
        branch = await members.branch_name(session, staff.member.branch_id)
    message = notice_sending.message(text, staff.member, branch) if preview is not None else ""
    return page(
        request,
        "notice_new",
        status=status,
        text=text,
        token=str(form.get("token", "")) or secrets.token_urlsafe(24),
        branches=branches,
        chosen={str(value) for value in form.getall("branch", [])},
        role=str(form.get("role", "")),
        roles=ROLE_NAMES,
        problem=problem,
        message=message,
        reach=reach,
        rung_names=RUNG_NAMES,
        most=notice_sending.TEXT_LIMIT,
    )


@routes.get("/notices", name="notices")
async def notice_list(request: web.Request) -> web.StreamResponse:
    staff = request[STAFF]
    async with request.config_dict[SESSIONS]() as session:
        sent_by = None if staff.is_admin else staff.member.id
        rows = await notices.latest(session, sent_by, SHOWN)
    return page(
        request,
        "notices",
        rows=rows,
        zone=request.app[CLOCK].zone,
        sent=request.query.get("sent", "")[:6],
    )


@routes.get("/notices/new", name="notice-new")
async def notice_new(request: web.Request) -> web.StreamResponse:
    return await _compose(request, MultiDict())


@routes.post("/notices/new", name="notice-send")
async def notice_send(request: web.Request) -> web.StreamResponse:
    """预览 shows the message and its reach; 确认发送 queues it (a second send of the same
    form — its token — queues nothing more)."""
    staff = request[STAFF]
    form = await request.post()
    text = typed(str(form.get("text", "")))
    token = str(form.get("token", ""))
    if not text or len(text) > notice_sending.TEXT_LIMIT:
        return await _compose(request, form, problem="text", status=422)
    if not 16 <= len(token) <= 64:
        raise web.HTTPBadRequest(text="the form has no token")
    async with request.config_dict[SESSIONS]() as session:
        branches = await directory.branches(session, staff.branch_scope)
    audience = _audience(form, staff, {b.id for b in branches if b.id is not None})
    if audience is None:  # another branch's id, typed into the form
        raise web.HTTPNotFound()
    if form.get("action") != "send":
        return await _compose(request, form, preview=audience)
    clock = request.app[CLOCK]
    async with transaction(request.config_dict[SESSIONS]) as session:
        branch = await members.branch_name(session, staff.member.branch_id)
        sent = await notice_sending.send(
            session,
            actor_of(request),
            staff.member,
            branch,
            audience,
            text,
            token,
            request.config_dict[SETTINGS],
            clock,
        )
    raise web.HTTPSeeOther(f"/admin/notices?sent={sent.notice.recipients}")
