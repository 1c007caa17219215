"""An activity's page in the console: when and where, its attendance, and its record — the
materials (会议记录, photos) linked to it, with the branch's materials of its days that can
be linked (or unlinked) by hand, audited. A secretary sees an activity that takes in their
branch and only their branch's materials; anything else is a 404."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import material_links
from bot.activities import KIND_NAMES
from bot.appkeys import SESSIONS
from console.rendering import page
from console.staff import CLOCK, STAFF, Staff, actor_of
from data import activities, directory, materials
from data.db import transaction
from data.models import Activity, AttendanceState, Material

routes = web.RouteTableDef()
ACTIVITY = r"/activities/{activity_id:\d{1,9}}"


async def _viewable(session: AsyncSession, activity_id: int, staff: Staff) -> Activity:
    found = await activities.get(session, activity_id)
    scope = staff.branch_scope
    if found is None or (
        scope is not None and not await activities.takes_in_branch(session, found, scope)
    ):
        raise web.HTTPNotFound()
    return found


async def _branches_of(session: AsyncSession, activity: Activity, staff: Staff) -> list[int]:
    """The branches whose materials may be linked to the activity by this staff member."""
    if staff.branch_scope is not None:
        return [staff.branch_scope]
    assert activity.id is not None
    named = await activities.branch_ids(session, activity.id)
    if named:
        return named
    return [b.id for b in await directory.branches(session, None) if b.id is not None]


@routes.get(ACTIVITY, name="activity")
async def activity_page(request: web.Request) -> web.StreamResponse:
    staff = request[STAFF]
    zone = request.app[CLOCK].zone
    activity_id = int(request.match_info["activity_id"])
    async with request.config_dict[SESSIONS]() as session:
        activity = await _viewable(session, activity_id, staff)
        linked = await materials.of_activity(session, activity_id, staff.branch_scope)
        first = activity.starts_at.astimezone(zone).date()
        last = max(first, (activity.ends_at - dt.timedelta(seconds=1)).astimezone(zone).date())
        branches = await _branches_of(session, activity, staff)
        candidates = await materials.linkable(session, activity_id, branches, first, last)
        rows = await activities.sheet(session, activity, zone)
    states = Counter(state for *_, state in rows)
    return page(
        request,
        "activity",
        activity=activity,
        kinds=KIND_NAMES,
        zone=zone,
        expected=len(rows),
        present=states[AttendanceState.PRESENT.value],
        leave=states[AttendanceState.LEAVE.value],
        linked=linked,
        by_kind=Counter(item.material.kind for item in linked),
        candidates=candidates,
        month=first.strftime("%Y-%m"),
        gallery_branch=branches[0] if len(branches) == 1 else None,
        done=request.query.get("done", "")[:8],
    )


@routes.post(ACTIVITY + "/materials", name="activity-materials")
async def link_material(request: web.Request) -> web.StreamResponse:
    """归入 or 移出 one material (its id in the form); audited. Out of scope: 404."""
    staff = request[STAFF]
    activity_id = int(request.match_info["activity_id"])
    form = await request.post()
    text = str(form.get("material", ""))
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise web.HTTPNotFound()
    link = form.get("action") != "unlink"
    async with transaction(request.config_dict[SESSIONS]) as session:
        await _viewable(session, activity_id, staff)
        if not link:
            found = await session.get(Material, int(text))
            if found is None or found.activity_id != activity_id:
                raise web.HTTPNotFound()
        try:
            await material_links.set_activity(
                session,
                int(text),
                activity_id if link else None,
                staff.member,
                actor_of(request),
                request.app[CLOCK].now(),
            )
        except material_links.OutOfScope:
            raise web.HTTPNotFound() from None
    done = "linked" if link else "unlinked"
    raise web.HTTPSeeOther(f"/admin/activities/{activity_id}?done={done}#materials")
