"""成员: the roster for staff — search and filters, a member's record, and the changes staff
make (unbind, role, branch, leaving), through the same operations as the chat and the CLI.
A secretary sees and changes their own branch only: another branch's member is a 404."""

from __future__ import annotations

import datetime as dt

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import membership
from bot.appkeys import SESSIONS, SETTINGS
from bot.channel_names import CHANNEL_NAMES, channel_name
from bot.clock import today
from bot.ladder import reachable_rungs, rung_names
from console.rendering import page
from console.staff import CLOCK, STAFF, Staff, actor_of
from data import directory, members
from data.db import transaction
from data.models import Branch, Member, Role

routes = web.RouteTableDef()
ROLE_NAMES = {"member": "党员", "secretary": "支部书记", "admin": "管理员"}
MEMBER_ID = r"{id:\d{1,12}}"


def _number(text: str | None, most: int = 999_999) -> int | None:
    if not text or not text.isascii() or not text.isdigit() or len(text) > 6:
        return None
    value = int(text)
    return value if 0 < value <= most else None


def _query(request: web.Request) -> directory.Query:
    """The list's filters from the address bar; unknown values are ignored."""
    values = request.query
    role = values.get("role")
    channel = values.get("channel")
    return directory.Query(
        text=values.get("q", "").strip()[: directory.SEARCH_LIMIT],
        branch_id=_number(values.get("branch")),
        role=role if role in ROLE_NAMES else None,
        channel=channel if channel in CHANNEL_NAMES else None,
        unbound=values.get("unbound") == "1",
        left=values.get("left") == "1",
        page=_number(values.get("page")) or 1,
    )


@routes.get("/members", name="members")
async def member_list(request: web.Request) -> web.StreamResponse:
    staff = request[STAFF]
    query = _query(request)
    async with request.config_dict[SESSIONS]() as session:
        rows, total = await directory.search(session, query, staff.branch_scope)
        branches = await directory.branches(session, staff.branch_scope)
    pages = max(1, -(-total // directory.PAGE_SIZE))
    return page(
        request,
        "members",
        rows=rows,
        total=total,
        query=query,
        pages=pages,
        branches=branches,
        roles=ROLE_NAMES,
        channels=CHANNEL_NAMES,
        channel_name=channel_name,
    )


def _month(now: dt.date) -> tuple[dt.date, dt.date]:
    return now.replace(day=1), now


async def _in_scope(session: AsyncSession, staff: Staff, member_id: int) -> Member:
    member = await session.get(Member, member_id)
    if member is None or (
        staff.branch_scope is not None and member.branch_id != staff.branch_scope
    ):
        raise web.HTTPNotFound(text="no such member")
    return member


@routes.get(f"/members/{MEMBER_ID}", name="member")
async def member_record(request: web.Request) -> web.StreamResponse:
    staff = request[STAFF]
    day = today(request.app[CLOCK])
    ledger_page = _number(request.query.get("page")) or 1
    async with request.config_dict[SESSIONS]() as session:
        found = await directory.record(
            session, int(request.match_info["id"]), staff.branch_scope, _month(day), ledger_page
        )
        branches = await directory.branches(session, None) if staff.is_admin else []
    if found is None:
        raise web.HTTPNotFound(text="no such member")
    now = request.app[CLOCK].now()
    rungs = (
        []
        if found.member.left_on
        else reachable_rungs(request.config_dict[SETTINGS], found.bindings, now)
    )
    return page(
        request,
        "member",
        record=found,
        rungs=rung_names(rungs),
        day=day,
        ledger_page=ledger_page,
        ledger_pages=max(1, -(-found.ledger_total_rows // directory.PAGE_SIZE)),
        roles=ROLE_NAMES,
        channel_name=channel_name,
        branches=branches,
        zone=request.app[CLOCK].now().tzinfo,
        saved=request.query.get("saved", "")[:20],
    )


def _back(member_id: int, saved: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"/admin/members/{member_id}?saved={saved}")


@routes.get(f"/members/{MEMBER_ID}/unbind", name="member-unbind-confirm")
async def member_unbind_confirm(request: web.Request) -> web.StreamResponse:
    """Asks before unbinding: the account stops reaching the member at once."""
    staff = request[STAFF]
    channel = request.query.get("channel", "")[:20]
    member_id = int(request.match_info["id"])
    async with request.config_dict[SESSIONS]() as session:
        member = await _in_scope(session, staff, member_id)
        bound = await members.bindings_of_member(session, member_id)
    binding = next((b for b in bound if b.channel == channel), None)
    if binding is None:
        raise web.HTTPNotFound()
    return page(
        request,
        "unbind_confirm",
        member=member,
        binding=binding,
        channel_name=channel_name,
        zone=request.app[CLOCK].zone,
    )


@routes.post(f"/members/{MEMBER_ID}/unbind", name="member-unbind")
async def member_unbind(request: web.Request) -> web.StreamResponse:
    """Unbind one channel (or all) so the member can bind a new account: the branch's
    secretary or an admin."""
    staff = request[STAFF]
    form = await request.post()
    channel = str(form.get("channel", ""))[:20]
    member_id = int(request.match_info["id"])
    now = request.app[CLOCK].now()
    async with transaction(request.config_dict[SESSIONS]) as session:
        member = await _in_scope(session, staff, member_id)
        if channel != "all":
            bound = await members.bindings_of_member(session, member_id)
            if channel not in {binding.channel for binding in bound}:
                raise web.HTTPBadRequest(text="the member has no account on that channel")
        channels = None if channel == "all" else [channel]
        await membership.unbind(session, actor_of(request), member, now, channels)
    raise _back(member_id, "unbind")


@routes.post(f"/members/{MEMBER_ID}/role", name="member-role")
async def member_role(request: web.Request) -> web.StreamResponse:
    """Change the role: admins only (a secretary cannot make anyone a secretary)."""
    staff = request[STAFF]
    if not staff.is_admin:
        raise web.HTTPForbidden(text="admins only")
    form = await request.post()
    role = str(form.get("role", ""))
    if role not in ROLE_NAMES:
        raise web.HTTPBadRequest(text="unknown role")
    member_id = int(request.match_info["id"])
    now = request.app[CLOCK].now()
    async with transaction(request.config_dict[SESSIONS]) as session:
        member = await _in_scope(session, staff, member_id)
        try:
            await membership.set_role(session, actor_of(request), member, Role(role), now)
        except membership.MemberLeft:
            raise web.HTTPConflict(text="the member has left") from None
    raise _back(member_id, "role")


@routes.post(f"/members/{MEMBER_ID}/branch", name="member-branch")
async def member_branch(request: web.Request) -> web.StreamResponse:
    """Move the member to another branch: admins only."""
    staff = request[STAFF]
    if not staff.is_admin:
        raise web.HTTPForbidden(text="admins only")
    form = await request.post()
    branch_id = _number(str(form.get("branch", "")), most=10**9)
    member_id = int(request.match_info["id"])
    now = request.app[CLOCK].now()
    async with transaction(request.config_dict[SESSIONS]) as session:
        member = await _in_scope(session, staff, member_id)
        branch = await session.get(Branch, branch_id) if branch_id else None
        if branch is None or branch.id is None:
            raise web.HTTPBadRequest(text="unknown branch")
        await membership.set_branch(session, actor_of(request), member, branch.id, now)
    raise _back(member_id, "branch")


@routes.post(f"/members/{MEMBER_ID}/leave", name="member-leave")
async def member_leave(request: web.Request) -> web.StreamResponse:
    """Mark as left on a day (history kept; no binding, no pushes), or undo it."""
    staff = request[STAFF]
    form = await request.post()
    member_id = int(request.match_info["id"])
    now = request.app[CLOCK].now()
    undo = form.get("undo") == "1"
    on = today(request.app[CLOCK])
    if not undo and form.get("on"):
        try:
            on = dt.date.fromisoformat(str(form.get("on"))[:10])
        except ValueError:
            raise web.HTTPBadRequest(text="the date is written YYYY-MM-DD") from None
    async with transaction(request.config_dict[SESSIONS]) as session:
        member = await _in_scope(session, staff, member_id)
        if undo:
            await membership.undo_leave(session, actor_of(request), member, now)
        else:
            await membership.leave(session, actor_of(request), member, on, now)
    raise _back(member_id, "undo" if undo else "leave")
