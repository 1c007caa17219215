"""In a real browser: a secretary signs in at a PC with the code sent through the WeChat
webhook, sees the overview, then signs out; the overview fits a 390-px phone screen."""

from __future__ import annotations

import re
from typing import Any

from tests.browser.conftest import PC, PHONE, Served, fits_width, openid


async def test_sign_in_at_a_pc_with_the_code_sent_to_the_bot(
    browser: Any, served: Served, tmp_path: Any
) -> None:
    base = served.base
    page = await browser.new_page(**PC)
    await page.goto(f"{base}/admin/")
    assert page.url == f"{base}/admin/login"
    shown = await page.locator(".code").inner_text()
    code = re.fullmatch(r"登录\s+(\d{6})", shown.strip())
    assert code, shown
    # The page reloads itself every few seconds; the test reloads at once instead of waiting.
    assert await page.locator('meta[http-equiv="refresh"]').count() == 1

    reply = await served.say(openid("1003"), f"登录 {code.group(1)}")
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
    browser: Any, served: Served
) -> None:
    page = await browser.new_page(**PHONE)
    await served.sign_in(page, "1003")
    await fits_width(page)
    await page.close()
