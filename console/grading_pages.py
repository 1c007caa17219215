"""月打分 and 关账 in the console, from the 资料 pages (admins only: anyone else's POST is a
404): grade a branch's month with a comment, close a month after a confirmation, reopen it
with a reason. Each is the same operation `qiyi month` calls (`bot.grading`), audited."""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from bot import grading
from bot.appkeys import CONVERSATION, SESSIONS
from bot.clock import today
from bot.reports.periods import PeriodKind, ReportPeriod, parse_period
from console import report_pages
from console.material_pages import gallery_page
from console.rendering import page
from console.staff import CLOCK, STAFF, actor_of
from data import members
from data.db import transaction

routes = web.RouteTableDef()
# The form was fine but the month's state refused it: 409; anything else is the form's: 422.
STATE_REFUSALS = frozenset(
    {
        grading.Reason.CLOSED,
        grading.Reason.NOT_ENDED,
        grading.Reason.ALREADY_CLOSED,
        grading.Reason.NOT_CLOSED,
    }
)


def _admin(request: web.Request) -> None:
    if not request[STAFF].is_admin:
        raise web.HTTPNotFound()


def _period(text: object) -> ReportPeriod:
    """The month a form names (YYYY-MM); anything else is an address that does not exist."""
    try:
        period = parse_period(str(text)[:7])
    except ValueError:
        raise web.HTTPNotFound() from None
    if period.kind is not PeriodKind.MONTH or len(str(text)) > 7:
        raise web.HTTPNotFound()
    return period


def _branch(text: object) -> int:
    value = str(text)
    if not value.isascii() or not value.isdigit() or len(value) > 12:
        raise web.HTTPNotFound()
    return int(value)


async def _refused(
    request: web.Request, first: dt.date, branch: int | None, refused: grading.Refused
) -> web.Response:
    """The page the form was on, saying in Chinese why nothing changed."""
    status = 409 if refused.reason in STATE_REFUSALS else 422
    return await gallery_page(request, first, branch, problem=refused.reason, status=status)


def _gallery(first: dt.date, branch: int | None = None) -> str:
    where = f"branch={branch}&month=" if branch is not None else "month="
    return f"/admin/materials?{where}{first.strftime('%Y-%m')}"


@routes.post("/materials/grade", name="material-grade")
async def give_grade(request: web.Request) -> web.StreamResponse:
    """Give or change the branch's grade for the month (refused while it is closed)."""
    _admin(request)
    form = await request.post()
    period, branch_id = _period(form.get("month", "")), _branch(form.get("branch", ""))
    first = period.span.first
    try:
        async with transaction(request.config_dict[SESSIONS]) as session:
            if not await members.branch_name(session, branch_id):
                raise web.HTTPNotFound()
            await grading.give_grade(
                session,
                actor_of(request),
                branch_id=branch_id,
                month=first,
                text=str(form.get("grade", "")),
                comment=str(form.get("comment", "")),
                rules=request.config_dict[CONVERSATION].rules.scoring,
                at=request.app[CLOCK].now(),
            )
    except grading.Refused as refused:
        return await _refused(request, first, branch_id, refused)
    report_pages.forget(request)
    raise web.HTTPSeeOther(_gallery(first, branch_id))


@routes.get("/materials/close", name="month-close-confirm")
async def confirm_close(request: web.Request) -> web.StreamResponse:
    """The confirmation step before a month is closed."""
    _admin(request)
    period = _period(request.query.get("month", ""))
    return page(request, "month_close", first=period.span.first)


@routes.post("/materials/close", name="month-close")
async def close_month(request: web.Request) -> web.StreamResponse:
    _admin(request)
    form = await request.post()
    period = _period(form.get("month", ""))
    clock = request.app[CLOCK]
    try:
        async with transaction(request.config_dict[SESSIONS]) as session:
            await grading.close_month(
                session,
                actor_of(request),
                period,
                request.config_dict[CONVERSATION].report_context,
                today=today(clock),
                at=clock.now(),
            )
    except grading.Refused as refused:
        return await _refused(request, period.span.first, None, refused)
    report_pages.forget(request)
    raise web.HTTPSeeOther(_gallery(period.span.first))


@routes.post("/materials/reopen", name="month-reopen")
async def reopen_month(request: web.Request) -> web.StreamResponse:
    _admin(request)
    form = await request.post()
    period = _period(form.get("month", ""))
    try:
        async with transaction(request.config_dict[SESSIONS]) as session:
            await grading.reopen_month(
                session,
                actor_of(request),
                period,
                str(form.get("reason", "")),
                request.app[CLOCK].now(),
            )
    except grading.Refused as refused:
        return await _refused(request, period.span.first, None, refused)
    report_pages.forget(request)
    raise web.HTTPSeeOther(_gallery(period.span.first))
