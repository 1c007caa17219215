"""审核: pending volunteer hours in the reviewer's scope; select several and approve them, or
reject them with one reason — through `bot.reviews`, as `通过`/`驳回` do in chat."""

from __future__ import annotations

from aiohttp import web

from bot import reviews
from bot.appkeys import CONVERSATION, SESSIONS
from console.rendering import page
from console.staff import CLOCK, STAFF, actor_of
from data import volunteer
from data.db import transaction

routes = web.RouteTableDef()
REASON_LIMIT = 200


@routes.get("/approvals", name="approvals")
async def approvals(request: web.Request) -> web.StreamResponse:
    staff = request[STAFF]
    async with request.config_dict[SESSIONS]() as session:
        rows = await volunteer.pending_with_members(
            session, reviews.scope(staff.member), reviews.MAX_AT_ONCE
        )
        _, total = await volunteer.pending(session, reviews.scope(staff.member), 1)
    done = {key: _count(request.query.get(key)) for key in ("approved", "rejected", "skipped")}
    return page(
        request, "approvals", rows=rows, total=total, done=done, problem="", most=REASON_LIMIT
    )


def _count(text: str | None) -> int:
    return int(text) if text and text.isascii() and text.isdigit() and len(text) < 4 else 0


def _entry_ids(values: list[str]) -> list[int]:
    """The selected entries: ids of at most 9 ASCII digits, at most `MAX_AT_ONCE` of them."""
    ids = [int(v) for v in values if v.isascii() and v.isdigit() and 0 < len(v) <= 9]
    if len(ids) != len(values) or not ids or len(ids) > reviews.MAX_AT_ONCE:
        raise web.HTTPBadRequest(text="select between 1 and 50 entries")
    return ids


@routes.post("/approvals", name="approvals-review")
async def review(request: web.Request) -> web.StreamResponse:
    staff = request[STAFF]
    form = await request.post()
    ids = _entry_ids([str(value) for value in form.getall("entry", [])])
    decision = form.get("decision")
    if decision not in ("approve", "reject"):
        raise web.HTTPBadRequest(text="approve or reject")
    reason = str(form.get("reason", "")).strip()
    if decision == "reject" and not (0 < len(reason) <= REASON_LIMIT):
        return await _again(request, "reason")
    conversation = request.config_dict[CONVERSATION]
    async with transaction(request.config_dict[SESSIONS]) as session:
        results = await reviews.review(
            session,
            reviewer=staff.member,
            entry_ids=ids,
            approve=decision == "approve",
            reason=reason,
            actor=actor_of(request),
            settings=conversation.settings,
            clock=request.app[CLOCK],
            rules=conversation.rules.points,
        )
    done = sum(result.done for result in results)
    key = "approved" if decision == "approve" else "rejected"
    raise web.HTTPSeeOther(f"/admin/approvals?{key}={done}&skipped={len(results) - done}")


async def _again(request: web.Request, problem: str) -> web.StreamResponse:
    """The list again, with what was wrong (nothing was changed)."""
    staff = request[STAFF]
    async with request.config_dict[SESSIONS]() as session:
        rows = await volunteer.pending_with_members(
            session, reviews.scope(staff.member), reviews.MAX_AT_ONCE
        )
        _, total = await volunteer.pending(session, reviews.scope(staff.member), 1)
    done = {"approved": 0, "rejected": 0, "skipped": 0}
    return page(
        request,
        "approvals",
        400,
        rows=rows,
        total=total,
        done=done,
        problem=problem,
        most=REASON_LIMIT,
    )
