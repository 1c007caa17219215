"""报表 in the console: the same numbers as `qiyi report` — computed aside, kept, served —
with the chart and the files to download; the office's only."""

from __future__ import annotations

import io

from aiohttp import web
from aiohttp.test_utils import TestClient
from openpyxl import load_workbook
from sqlmodel import select

from bot.appkeys import CONVERSATION
from bot.reports.periods import PeriodKind, ReportPeriod
from bot.reports.report_cache import build
from console import report_pages
from data.models import Member
from tests.console.conftest import Console


def console_app(console: Console) -> web.Application:
    for resource in console.client.app.router.resources():
        info = resource.get_info()
        if "app" in info and info.get("prefix") == "/admin":
            return info["app"]
    raise AssertionError("no console sub-application")


async def shown(browser: Console, path: str) -> str:
    """The page once its report is computed (the first visit starts the computation)."""
    first = await browser.client.get(path)
    holder = console_app(browser)[report_pages.CACHE]
    await holder["cache"].settled()
    if "正在计算" not in await first.text():
        return await first.text()
    return await (await browser.client.get(path)).text()


async def admin(console: Console) -> Console:
    other = Console(TestClient(console.client.server), console.chat, console.clock)
    await other.client.start_server()
    await other.sign_in("9001")
    return other


async def test_the_months_report_has_the_numbers_of_qiyi_report(console: Console) -> None:
    await console.chat.say("1001", "学习 120")
    await console.chat.say("2001", "学习 30")
    browser = await admin(console)
    try:
        page = await shown(browser, "/admin/reports?period=2026-11")
        chart = await browser.client.get("/admin/reports/chart.png?period=2026-11")
        sheet = await browser.client.get("/admin/reports/download?period=2026-11&format=xlsx")
        markdown = await browser.client.get("/admin/reports/download?period=2026-11&format=md")
    finally:
        await browser.client.session.close()
    conversation = console.client.app[CONVERSATION]
    expected = await build(
        conversation.sessions,
        conversation.report_context,
        ReportPeriod(PeriodKind.MONTH, 2026, 11),
        console.clock.now().date(),
    )
    assert "截至今日" in page
    for branch in expected.branches:
        if branch.score is not None:
            assert f'<td data-label="支部" class="nowrap">{branch.branch}</td>' in page
            assert f"<strong>{branch.score:.1f}</strong>" in page
    assert chart.status == 200 and (await chart.read()).startswith(b"\x89PNG")
    assert sheet.headers["Content-Disposition"].startswith("attachment; filename*=UTF-8''")
    book = load_workbook(io.BytesIO(await sheet.read()))
    assert book.sheetnames
    assert "支部评分" in await markdown.text()


async def test_a_quarter_and_a_year_are_offered_and_a_future_period_is_not(
    console: Console,
) -> None:
    browser = await admin(console)
    try:
        quarter = await shown(browser, "/admin/reports?period=2026Q4")
        year = await shown(browser, "/admin/reports?period=2026")
        future = await browser.client.get("/admin/reports?period=2027-01")
        nonsense = await browser.client.get("/admin/reports?period=2026-13")
        bad_format = await browser.client.get("/admin/reports/download?period=2026&format=exe")
    finally:
        await browser.client.session.close()
    assert "第4季度" in quarter and "各月" in quarter
    assert "2026年" in year and "年终总结" in year
    assert future.status == 404 and nonsense.status == 404 and bad_format.status == 404


async def test_secretaries_get_no_reports(console: Console) -> None:
    await console.sign_in("1003")
    for path in (
        "/admin/reports",
        "/admin/reports/chart.png",
        "/admin/reports/download?format=md",
    ):
        assert (await console.client.get(path)).status == 404, path
    assert "报表</a>" not in await (await console.client.get("/admin/")).text()


async def test_a_grade_given_shows_in_the_report_at_once(console: Console) -> None:
    await console.chat.say("1001", "学习 120")
    async with console.client.app[CONVERSATION].sessions() as session:
        branch = (
            await session.exec(select(Member.branch_id).where(Member.roster_id == "1001"))
        ).one()
    browser = await admin(console)
    try:
        before = await shown(browser, "/admin/reports?period=2026-11")
        csrf = await browser.csrf()
        graded = await browser.client.post(
            "/admin/materials/grade",
            data={"csrf": csrf, "month": "2026-11", "branch": str(branch), "grade": "优"},
            allow_redirects=False,
        )
        after = await shown(browser, "/admin/reports?period=2026-11")
    finally:
        await browser.client.session.close()
    assert graded.status == 303
    assert '<td data-label="月打分">待评</td>' in before
    assert '<td data-label="月打分">100%</td>' in after
