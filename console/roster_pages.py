"""导入名册 and 导出名册: an admin uploads a roster file (CSV/XLSX), sees every problem of
it or the change it makes (added, updated, unchanged, absent), and only 确认导入 writes it,
through `membership.import_roster` as `qiyi members import` does. Import sets roles and
branches across the organisation: admins only (a secretary gets 404). The export is for
all staff, of their own scope."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from bot import membership, roster, roster_sheet
from bot.appkeys import SESSIONS
from bot.clock import today
from console.member_pages import ROLE_NAMES
from console.rendering import page
from console.staff import CLOCK, STAFF, Staff, actor_of, check_csrf
from data import members, roster_drafts
from data.db import transaction
from data.members import RosterRow
from data.models import Role, RosterDraft

routes = web.RouteTableDef()
MAX_UPLOAD_BYTES = 2 * 1024 * 1024
MULTIPART_OVERHEAD = 16 * 1024  # the token field and the parts' headers
MAX_NAME_CHARS = 100
MAX_TOKEN_BYTES = 200
PROBLEMS_KEPT = 500  # of a file wrong on every line, the first ones are enough to fix it
LISTED = 300  # added and updated members listed on the preview (all are counted)
MAX_LEAVING = 20_000
DRAFT = f"/roster/drafts/{{id:{roster_drafts.ID_PATTERN}}}"
FIELD_NAMES = {
    "member_id": "工号",
    "name": "姓名",
    "branch": "支部",
    "role": "角色",
    "phone": "手机",
}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _admin(request: web.Request) -> Staff:
    staff = request[STAFF]
    if not staff.is_admin:
        raise web.HTTPNotFound(text="not found")
    return staff


def _form_page(request: web.Request, problem: str = "", status: int = 200) -> web.Response:
    return page(
        request,
        "roster",
        status=status,
        problem=problem,
        most_mb=MAX_UPLOAD_BYTES // 2**20,
        minutes=int(roster_drafts.LIFETIME.total_seconds() // 60),
    )


@routes.get("/roster", name="roster")
async def roster_form(request: web.Request) -> web.StreamResponse:
    _admin(request)
    return _form_page(request)


class Refused(Exception):
    def __init__(self, problem: str, status: int) -> None:
        super().__init__(problem)
        self.problem = problem
        self.status = status


async def _bounded(part: BodyPartReader, limit: int) -> bytes | None:
    """The part's bytes, or None as soon as they pass `limit`."""
    data = bytearray()
    while chunk := await part.read_chunk():
        data.extend(chunk)
        if len(data) > limit:
            return None
    return bytes(data)


async def _read_upload(request: web.Request, staff: Staff) -> tuple[str, bytes]:
    """The file's name and bytes, from a form whose first field is the CSRF token (checked
    before the file is read) and whose second is the file, at most `MAX_UPLOAD_BYTES`."""
    if (request.content_length or 0) > MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD:
        raise Refused("too_large", 413)
    if request.content_type != "multipart/form-data":
        raise Refused("bad_form", 400)
    try:
        reader = await request.multipart()
        token = await reader.next()
        given = b""
        if isinstance(token, BodyPartReader) and token.name == "csrf":
            given = await _bounded(token, MAX_TOKEN_BYTES) or b""
        check_csrf(staff, given.decode("utf-8", "replace"))
        upload = await reader.next()
    except ValueError:  # a broken multipart body
        raise Refused("bad_form", 400) from None
    if not isinstance(upload, BodyPartReader) or upload.name != "file" or not upload.filename:
        raise Refused("no_file", 400)
    name = PurePath(upload.filename.replace("\\", "/")).name[-MAX_NAME_CHARS:]
    if PurePath(name).suffix.lower() not in roster.SUFFIXES:
        raise Refused("bad_suffix", 400)
    data = await _bounded(upload, MAX_UPLOAD_BYTES)
    if data is None:
        raise Refused("too_large", 413)
    return name, data


def _draft_content(parsed: roster.Parsed) -> str:
    rows = [[r.member_id, r.name, r.branch, r.role.value, r.phone_tail] for r in parsed.rows]
    problems = [problem.as_json() for problem in parsed.problems[:PROBLEMS_KEPT]]
    content = {"rows": rows, "problems": problems, "problem_count": len(parsed.problems)}
    return json.dumps(content, ensure_ascii=False)


@routes.post("/roster", name="roster-upload")
async def roster_upload(request: web.Request) -> web.StreamResponse:
    """Read the file (an XLSX in a thread: openpyxl is slow and blocking), keep what was
    read as a draft, and show it."""
    staff = _admin(request)
    try:
        name, data = await _read_upload(request, staff)
    except Refused as refused:
        return _form_page(request, refused.problem, refused.status)
    parsed = await asyncio.to_thread(roster.parse_file, name, data)
    now = request.app[CLOCK].now()
    assert staff.member.id is not None
    async with transaction(request.config_dict[SESSIONS]) as session:
        draft_id = await roster_drafts.create(
            session, staff.member.id, name, _draft_content(parsed), now
        )
    raise web.HTTPSeeOther(f"/admin/roster/drafts/{draft_id}")


def _rows(content: dict[str, Any]) -> list[RosterRow]:
    return [RosterRow(m, name, b, Role(role), tail) for m, name, b, role, tail in content["rows"]]


def _usable(draft: RosterDraft | None, now: dt.datetime) -> RosterDraft:
    if draft is None:
        raise web.HTTPNotFound(text="no such upload")
    if roster_drafts.expired(draft, now):
        raise Refused("expired", 410)
    return draft


@routes.get(DRAFT, name="roster-draft")
async def roster_preview(request: web.Request) -> web.StreamResponse:
    """What the upload would change, compared with the database now; nothing is written."""
    staff = _admin(request)
    now = request.app[CLOCK].now()
    async with request.config_dict[SESSIONS]() as session:
        found = await roster_drafts.find(session, request.match_info["id"], staff.member.id or 0)
        try:
            draft = _usable(found, now)
        except Refused as refused:
            return _form_page(request, refused.problem, refused.status)
        content = json.loads(draft.content)
        rows = _rows(content)
        plan = await members.plan_roster(session, rows) if rows else None
    problems = [roster.Problem.from_json(problem) for problem in content["problems"]]
    return page(
        request,
        "roster_preview",
        draft=draft,
        problems=problems,
        problem_count=content["problem_count"],
        plan=plan,
        listed=LISTED,
        fields=FIELD_NAMES,
        roles=ROLE_NAMES,
    )


def _leaving(values: list[str]) -> set[int]:
    if len(values) > MAX_LEAVING:
        raise web.HTTPBadRequest(text="too many members ticked")
    ids = {int(v) for v in values if v.isascii() and v.isdigit() and 0 < len(v) <= 12}
    if len(ids) != len(set(values)):
        raise web.HTTPBadRequest(text="member ids are numbers")
    return ids


@routes.post(DRAFT, name="roster-confirm")
async def roster_confirm(request: web.Request) -> web.StreamResponse:
    """确认导入: compare again with the database as it is now and write, in one transaction;
    the draft is used up. Absent members are marked left only when ticked."""
    staff = _admin(request)
    form = await request.post()
    leaving = _leaving([str(value) for value in form.getall("leave", [])])
    clock = request.app[CLOCK]
    now = clock.now()
    draft_id = request.match_info["id"]
    member_id = staff.member.id or 0
    async with transaction(request.config_dict[SESSIONS]) as session:
        try:
            draft = _usable(await roster_drafts.find(session, draft_id, member_id), now)
        except Refused as refused:
            return _form_page(request, refused.problem, refused.status)
        content = json.loads(draft.content)
        if content["problem_count"]:
            raise web.HTTPConflict(text="a file with problems is not imported")
        if not await roster_drafts.take(session, draft_id, member_id, now):
            raise web.HTTPNotFound(text="no such upload")
        result = await membership.import_roster(
            session, actor_of(request), _rows(content), now, today(clock), leaving=leaving
        )
        updated = sum(1 for change in result.changes if change.before)
    return page(
        request,
        "roster_done",
        file_name=draft.file_name,
        added=result.added,
        updated=updated,
        left=result.left,
    )


@routes.get("/roster/export", name="roster-export")
async def roster_export(request: web.Request) -> web.StreamResponse:
    """导出名册: the roster as a workbook that 导入名册 reads back — everyone for an admin,
    their own branch for a secretary; audited."""
    staff = request[STAFF]
    clock = request.app[CLOCK]
    async with transaction(request.config_dict[SESSIONS]) as session:
        listing = await membership.export_roster(
            session, actor_of(request), staff.branch_scope, clock.now()
        )
    body = await asyncio.to_thread(roster_sheet.workbook_bytes, listing)
    day = today(clock).isoformat()
    disposition = (
        f"attachment; filename=\"roster-{day}.xlsx\"; filename*=UTF-8''{quote(f'名册-{day}.xlsx')}"
    )
    return web.Response(body=body, content_type=XLSX, headers={"Content-Disposition": disposition})
