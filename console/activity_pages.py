"""活动 in the console: the activities in scope with their sign-ups, presence and leave; the
form that publishes one (through `bot.activities.publish`, as the chat does: the same
notices, reminders and audit row); and the full-screen sign-in page — the code of the
moment and a QR code of `签到 <编号> <码>` (an SVG drawn on the server), refreshed by the
page itself when the code changes (a meta refresh: no script)."""

from __future__ import annotations

import datetime as dt
import io

import segno
from aiohttp import web
from markupsafe import Markup

from bot import activity_codes, attendance
from bot.activities import KIND_NAMES, Refused, managed, publish
from bot.appkeys import SESSIONS, SETTINGS
from console.activity_form import OutOfScope, Reading, blank, read_form
from console.member_pages import ROLE_NAMES
from console.rendering import page
from console.staff import CLOCK, STAFF, actor_of
from data import activities, directory
from data.db import transaction

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
    published = request.query.get("published", "")[:9]
    return page(
        request,
        "activities",
        rows=rows,
        kinds=KIND_NAMES,
        zone=clock.zone,
        published=published if published.isdigit() else "",
    )


@routes.get("/activities/new", name="activity-new")
async def activity_new(request: web.Request) -> web.StreamResponse:
    return await _form_page(request, blank())


@routes.post("/activities/new", name="activity-publish")
async def activity_publish(request: web.Request) -> web.StreamResponse:
    """Publish the activity the form describes; the form again with each field's problem
    (422) when something is wrong — nothing is written then."""
    staff = request[STAFF]
    clock = request.app[CLOCK]
    form = await request.post()
    async with request.config_dict[SESSIONS]() as session:
        branches = await directory.branches(session, staff.branch_scope)
    known = {branch.id for branch in branches if branch.id is not None}
    try:
        reading = read_form(
            form, admin=staff.is_admin, known=known, now=clock.now(), zone=clock.zone
        )
    except OutOfScope:  # another branch's id, typed into the form
        raise web.HTTPNotFound() from None
    if reading.draft is None:
        return await _form_page(request, reading, status=422)
    try:
        async with transaction(request.config_dict[SESSIONS]) as session:
            activity = await publish(
                session,
                reading.draft,
                staff.member,
                actor_of(request),
                request.config_dict[SETTINGS],
                clock,
            )
    except Refused as refused:
        # Publishing refuses only a time: gone by (since the form was read) or taken.
        reading.problems["starts"] = refused.problem.value
        return await _form_page(request, reading, status=422, clash=refused.answer())
    raise web.HTTPSeeOther(f"/admin/activities?published={activity.id}")


async def _form_page(
    request: web.Request, reading: Reading, status: int = 200, clash: str = ""
) -> web.Response:
    """The form with what was typed and each field's problem (`clash`: the chat's answer
    naming the activity at that time)."""
    staff = request[STAFF]
    async with request.config_dict[SESSIONS]() as session:
        branches = await directory.branches(session, staff.branch_scope)
    return page(
        request,
        "activity_new",
        status=status,
        values=reading.values,
        chosen=set(reading.branches),
        problems=reading.problems,
        clash=clash,
        branches=branches,
        kinds={kind.value: name for kind, name in KIND_NAMES.items()},
        roles=ROLE_NAMES,
        zone=request.app[CLOCK].zone,
    )


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
