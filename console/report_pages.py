"""报表: the month's branch scores, the quarter's bulletin and the year's summary — the same
numbers as `qiyi report` (one computation, `bot.reports.report_cache`), with the chart, every
branch's parts, and the files to download (md, html, xlsx, png). The office's (admins)."""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from bot.appkeys import CONVERSATION, ENGINE
from bot.cli_reports import FORMATS, WRITERS
from bot.clock import today
from bot.reports import report_cache
from bot.reports.chart import report_png
from bot.reports.documents import PART_NAMES, PENDING, Report, heading, score_label
from bot.reports.periods import PeriodKind, ReportPeriod, parse_period
from console.rendering import page
from console.staff import CLOCK, STAFF

routes = web.RouteTableDef()
CACHE = web.AppKey("report_cache", dict)  # type: ignore[type-arg]  # {"cache": ReportCache}
TYPES = {
    "md": "text/markdown",
    "html": "text/html",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "png": "image/png",
}


def _admin(request: web.Request) -> None:
    if not request[STAFF].is_admin:
        raise web.HTTPNotFound()


def _cache(request: web.Request) -> report_cache.ReportCache:
    """One cache per server process, made on first use (the engine is the parent app's)."""
    holder = request.app[CACHE]
    if "cache" not in holder:
        conversation = request.config_dict[CONVERSATION]
        compute = report_cache.computation_for(
            request.config_dict[ENGINE], conversation.report_context
        )
        holder["cache"] = report_cache.ReportCache(request.app[CLOCK], compute)
    cache: report_cache.ReportCache = holder["cache"]
    return cache


def forget(request: web.Request) -> None:
    """A grade, a closing or a reopening changed the figures: compute the reports anew
    (in this process; another worker's kept reports age out within minutes)."""
    holder = request.app[CACHE]
    if "cache" in holder:
        holder["cache"].forget()
    holder.pop("charts", None)


def _period(request: web.Request) -> ReportPeriod:
    """The period asked for (`2026-11`, `2026Q4`, `2026`), this month by default; a period
    not begun yet is a 404."""
    day = today(request.app[CLOCK])
    text = request.query.get("period", "")[:10]
    try:
        period = parse_period(text) if text else ReportPeriod(PeriodKind.MONTH, day.year, day.month)
    except ValueError:
        raise web.HTTPNotFound() from None
    if period.span.first > day or period.year < 2000:
        raise web.HTTPNotFound()
    return period


def _choices(day: dt.date) -> list[tuple[str, str]]:
    """The periods offered: this year's months so far, its quarters, this year and last."""
    found: list[tuple[str, str]] = []
    for month in range(day.month, 0, -1):
        found.append((f"{day.year}-{month:02d}", f"{day.year}年{month}月"))
    for quarter in range((day.month - 1) // 3 + 1, 0, -1):
        found.append((f"{day.year}Q{quarter}", f"{day.year}年第{quarter}季度"))
    found += [(str(day.year), f"{day.year}年全年"), (str(day.year - 1), f"{day.year - 1}年全年")]
    return found


@routes.get("/reports", name="reports")
async def report_page(request: web.Request) -> web.StreamResponse:
    _admin(request)
    period = _period(request)
    kept = await _cache(request).get(period)
    clock = request.app[CLOCK]
    return page(
        request,
        "reports",
        period=period,
        kept=kept,
        heading=heading(kept.report) if kept else "",
        label=score_label(period),
        parts=PART_NAMES,
        pending=PENDING,
        choices=_choices(today(clock)),
        formats=FORMATS,
        zone=clock.zone,
    )


async def _written(report: Report, kind: str) -> bytes:
    """The report in one format, written by `qiyi report`'s own writer (in a thread)."""

    def write() -> bytes:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"report.{kind}"
            WRITERS[kind](report, path)
            return path.read_bytes()

    return await asyncio.to_thread(write)


async def _kept(request: web.Request) -> report_cache.Kept:
    kept = await _cache(request).get(_period(request))
    if kept is None:
        raise web.HTTPServiceUnavailable(
            text="报表正在计算，请稍后再试。", headers={"Retry-After": "5"}
        )
    return kept


async def _kept_report(request: web.Request) -> Report:
    return (await _kept(request)).report


CHARTS_KEPT = 8


@routes.get("/reports/chart.png", name="report-chart")
async def report_chart(request: web.Request) -> web.StreamResponse:
    """The report's chart (as `qiyi report` draws it), drawn once per computed report."""
    _admin(request)
    kept = await _kept(request)
    charts = request.app[CACHE].setdefault("charts", {})
    key = (kept.report.period.label, kept.at)
    body = charts.get(key)
    if body is None:
        body = await asyncio.to_thread(report_png, kept.report)
        charts[key] = body
        while len(charts) > CHARTS_KEPT:
            charts.pop(next(iter(charts)))
    return web.Response(body=body, content_type="image/png")


@routes.get("/reports/download", name="report-download")
async def report_download(request: web.Request) -> web.StreamResponse:
    _admin(request)
    kind = request.query.get("format", "")
    if kind not in FORMATS:
        raise web.HTTPNotFound()
    report = await _kept_report(request)
    body = await _written(report, kind)
    name = f"{heading(report)}.{kind}"
    return web.Response(
        body=body,
        headers={
            "Content-Type": TYPES[kind],
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}",
        },
    )
