"""In a real browser: a secretary signs in at a PC with the code sent through the WeChat
webhook, sees the overview, then signs out; the overview fits a 390-px phone screen."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import FixedClock
from bot.settings import Settings
from tests.browser.conftest import ServerFactory, send_wechat_text, serve_console, sign_in

SECRETARY_OPENID = "oSecretary1003xxxxxxxxxxxxxx"


@pytest.fixture
async def served(
    aiohttp_server: ServerFactory, settings: Settings, clock: FixedClock, engine: AsyncEngine
) -> tuple[str, FixedClock]:
    base, _ = await serve_console(aiohttp_server, settings, clock, "1003", SECRETARY_OPENID)
    return base, clock


async def test_sign_in_at_a_pc_with_the_code_sent_to_the_bot(
    browser: Any, served: tuple[str, FixedClock], tmp_path: Any
) -> None:
    base, clock = served
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await page.goto(f"{base}/admin/")
    assert page.url == f"{base}/admin/login"
    shown = await page.locator(".code").inner_text()
    code = re.fullmatch(r"登录\s+(\d{6})", shown.strip())
    assert code, shown
    # The page reloads itself every few seconds; the test reloads at once instead of waiting.
    assert await page.locator('meta[http-equiv="refresh"]').count() == 1

    reply = await send_wechat_text(base, clock, SECRETARY_OPENID, f"登录 {code.group(1)}")
    assert "已确认登录管理后台" in reply

    await page.reload()
    assert page.url == f"{base}/admin/"
    assert "王芳" in await page.locator("header").inner_text()
    assert "第一党支部" in await page.locator("h1").inner_text()
    await page.screenshot(path=str(tmp_path / "dashboard.png"))

    await page.get_by_role("button", name="退出").click()
    assert page.url == f"{base}/admin/login"
    await page.goto(f"{base}/admin/")
    assert page.url == f"{base}/admin/login"
    await page.close()


async def test_the_overview_fits_a_phone_without_scrolling_sideways(
    browser: Any, served: tuple[str, FixedClock]
) -> None:
    base, clock = served
    page = await browser.new_page(viewport={"width": 390, "height": 844})
    await sign_in(page, base, clock, SECRETARY_OPENID)

    widths = await page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], widths
    await page.close()
