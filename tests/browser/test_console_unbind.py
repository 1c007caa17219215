"""Unbinding in a real browser: the secretary unbinds a member's WeChat account on the
member's page; a new WeChat account then binds with an invitation code (the default proof)
and the member's page shows the new binding."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from tests.browser.conftest import PC, Served, openid
from tests.queries import issue_code

NEW_PHONE = "oTestNewPhone1001xxxxxxxxxxx"


async def test_unbound_on_the_console_the_member_binds_a_new_wechat_account(
    browser: Any, served: Served, tmp_path: Any
) -> None:
    page = await browser.new_page(**PC)
    await served.sign_in(page, "1003")
    await page.get_by_role("link", name="成员", exact=True).click()
    await page.get_by_role("link", name="张三").click()
    bindings = page.locator("section.card", has_text="绑定的账号")
    await expect(bindings).to_contain_text("微信 2026-11-25 09:00 绑定")

    await bindings.get_by_role("link", name="解绑").click()
    await expect(page.locator("h1")).to_have_text("解绑张三的微信账号？")
    await page.get_by_role("button", name="确认解绑").click()
    await expect(page.locator(".notice")).to_have_text("已保存。")
    await expect(bindings).to_contain_text("没有绑定任何账号")
    # The old phone is a stranger now.
    assert "您还没有绑定身份" in await served.say(openid("1001"), "积分")

    served.clock.advance(hours=2)
    code = await issue_code(served.conversation, "1001")
    assert "绑定成功" in await served.say(NEW_PHONE, f"绑定 1001 {code}")
    assert "张三的积分卡" in await served.say(NEW_PHONE, "积分")

    await page.reload()
    await expect(bindings).to_contain_text("微信 2026-11-25 11:00 绑定")
    await page.screenshot(path=str(tmp_path / "member-rebound.png"), full_page=True)
    await page.close()
