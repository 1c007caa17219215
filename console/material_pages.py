"""资料: the materials branches sent by chat for the monthly record, kept for good — a gallery
per branch and month: pictures as thumbnails (the original on a click), videos playable,
documents downloaded, each with who sent it, when and its caption. A secretary sees their
branch (another branch's material is a 404); an admin every branch, counted per month."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import OrderedDict
from typing import Any
from urllib.parse import quote

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import thumbnails
from bot.appkeys import CONVERSATION, MEDIA_STORE, SESSIONS
from bot.clock import today
from console import security
from console.rendering import page
from console.staff import CLOCK, STAFF, Staff
from data import closed_months, grades, materials, members
from data.media.store import NotStored
from data.models import FetchState

routes = web.RouteTableDef()
MATERIAL_ID = r"{id:\d{1,12}}"
THUMBS = web.AppKey("thumbnails", OrderedDict)  # type: ignore[type-arg]
THUMBS_KEPT = 512  # about 20 KB each
SHOWN_INLINE = ("image/", "video/")  # other files are downloaded, never shown by the browser
EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "video/mp4": ".mp4",
    "audio/amr": ".amr",
    "audio/mpeg": ".mp3",
    "application/pdf": ".pdf",
}


def _month(text: str, now: dt.date) -> tuple[dt.date, dt.date]:
    """The month `YYYY-MM` (this month when absent or wrong) as its first and last day —
    this month's last day is today."""
    try:
        first = dt.datetime.strptime(text[:7], "%Y-%m").date() if text else now.replace(day=1)
    except ValueError:
        first = now.replace(day=1)
    following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return first, min(following - dt.timedelta(days=1), now)


def _number(text: str | None) -> int | None:
    if not text or not text.isascii() or not text.isdigit() or len(text) > 12:
        return None
    return int(text)


@routes.get("/materials", name="materials")
async def gallery(request: web.Request) -> web.StreamResponse:
    day = today(request.app[CLOCK])
    first, _ = _month(request.query.get("month", ""), day)
    number = _number(request.query.get("page")) or 1
    return await gallery_page(request, first, _number(request.query.get("branch")), number)


async def gallery_page(
    request: web.Request,
    first: dt.date,
    asked: int | None,
    number: int = 1,
    *,
    problem: str = "",
    status: int = 200,
) -> web.Response:
    """A month's overview (every branch's count, and its 关账 state) or one branch's gallery
    with its grade (月打分), in the staff member's scope; `problem` names a refusal."""
    staff = request[STAFF]
    first, last = _month(first.strftime("%Y-%m"), today(request.app[CLOCK]))
    if staff.branch_scope is not None:
        if asked is not None and asked != staff.branch_scope:
            raise web.HTTPNotFound()
        asked = staff.branch_scope
    async with request.config_dict[SESSIONS]() as session:
        state = await _month_state(request, session, first)
        if asked is None:
            counts = await materials.counts_by_branch(session, first, last)
            return page(
                request,
                "materials",
                status=status,
                counts=counts,
                first=first,
                branch=None,
                problem=problem,
                **state,
                **_around(first),
            )
        name = await members.branch_name(session, asked)
        if not name:
            raise web.HTTPNotFound()
        shown = await materials.gallery(session, asked, first, last, number)
        total = await materials.count_of_branch(session, asked, first, last)
        grade = await grades.grade_of(session, asked, first)
    return page(
        request,
        "materials",
        status=status,
        branch=asked,
        branch_name=name,
        first=first,
        shown=shown,
        total=total,
        number=number,
        pages=max(1, -(-total // materials.GALLERY_PAGE)),
        inline=SHOWN_INLINE,
        grade=grade,
        problem=problem,
        **state,
        **_around(first),
    )


async def _month_state(
    request: web.Request, session: AsyncSession, first: dt.date
) -> dict[str, Any]:
    """Whether the month is closed (and by whom), whether it has ended (it may be closed),
    and how grades are written under the rules (`levels`: the names; None: a number)."""
    rules = request.config_dict[CONVERSATION].rules.scoring
    following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return {
        "closing": await closed_months.closed(session, first),
        "ended": following <= today(request.app[CLOCK]),
        "levels": list(rules.grade_levels) if rules.grading == "levels" else None,
        "zone": request.app[CLOCK].zone,
    }


def _around(first: dt.date) -> dict[str, dt.date]:
    return {"first_of_previous": (first - dt.timedelta(days=1)).replace(day=1)}


async def _kept(request: web.Request, staff: Staff) -> materials.Shown:
    """The material of the address, in the staff member's scope, with its file kept."""
    async with request.config_dict[SESSIONS]() as session:
        found = await materials.with_file(session, int(request.match_info["id"]))
    if found is None or (
        staff.branch_scope is not None and found.material.branch_id != staff.branch_scope
    ):
        raise web.HTTPNotFound()
    if found.file is None or found.file.state != FetchState.STORED.value:
        raise web.HTTPNotFound(text="the file is not kept (yet)")
    return found


def _download_name(shown: materials.Shown) -> str:
    original = shown.file.original_name if shown.file else ""
    extension = EXTENSIONS.get(shown.file.mime if shown.file else "", "")
    return original or f"资料{shown.material.id}{extension}"


@routes.get(f"/materials/{MATERIAL_ID}/file", name="material-file")
async def material_file(request: web.Request) -> web.StreamResponse:
    """The kept file, streamed from the media store. Pictures and videos are shown;
    anything else is an attachment, sent with the type its bytes were found to be."""
    shown = await _kept(request, request[STAFF])
    file = shown.file
    assert file is not None
    store = request.config_dict[MEDIA_STORE]
    disposition = "inline" if file.mime.startswith(SHOWN_INLINE) else "attachment"
    response = web.StreamResponse(
        headers={
            "Content-Type": file.mime or "application/octet-stream",
            "Content-Disposition": f"{disposition}; filename*=UTF-8''"
            + quote(_download_name(shown), safe=""),
            "Cache-Control": "private, max-age=86400",
        }
    )
    if file.size is not None:
        response.content_length = file.size
    chunks = store.open(file.sha256)
    try:
        first = await anext(chunks, b"")
    except NotStored:
        raise web.HTTPNotFound(text="the file is missing from the media store") from None
    security.decorate(response)  # streamed: sent before the middleware would see it
    await response.prepare(request)
    await response.write(first)
    async for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


@routes.get(f"/materials/{MATERIAL_ID}/thumb", name="material-thumb")
async def material_thumb(request: web.Request) -> web.StreamResponse:
    """A picture's thumbnail, made in a thread on first sight and kept by content address."""
    shown = await _kept(request, request[STAFF])
    file = shown.file
    assert file is not None
    if not file.mime.startswith("image/"):
        raise web.HTTPNotFound()
    kept = request.app[THUMBS]
    small = kept.get(file.sha256)
    if small is None:
        original = await request.config_dict[MEDIA_STORE].read(file.sha256)
        try:
            small = await asyncio.to_thread(thumbnails.thumbnail, original)
        except thumbnails.NotAPicture:
            raise web.HTTPNotFound(text="not a picture that can be shown") from None
        kept[file.sha256] = small
        while len(kept) > THUMBS_KEPT:
            kept.popitem(last=False)
    return web.Response(
        body=small, content_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"}
    )
