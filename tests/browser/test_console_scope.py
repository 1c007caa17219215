"""A secretary's scope in a real browser: another branch's member, opened by typing the
address, is a 404 page that shows nothing of that member."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from tests.browser.conftest import PC, Served
from tests.queries import member_id


async def test_another_branchs_member_typed_into_the_address_bar_is_not_found(
    browser: Any, served: Served, tmp_path: Any
) -> None:
    own = await member_id(served.conversation, "1001")
    foreign = await member_id(served.conversation, "2001")
    page = await browser.new_page(**PC)
    await served.sign_in(page, "1003")

    # Their own branch's member, the same way: the page does show a member's data.
    shown = await page.goto(f"{served.base}/admin/members/{own}")
    assert shown.status == 200 and "张三" in await page.content()

    refused = await page.goto(f"{served.base}/admin/members/{foreign}")
    assert refused.status == 404
    await expect(page.locator("h1")).to_have_text("找不到要看的内容")
    await page.screenshot(path=str(tmp_path / "foreign-member.png"), full_page=True)
    html = await page.content()
    assert "赵强" not in html and "2001" not in html and "第二党支部" not in html
    await page.close()
