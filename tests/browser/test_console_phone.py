"""The console on a 390-px phone screen: 成员, a member's record, 审核 and 审计 — with rows
in them, long texts included — fit the width without scrolling sideways."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import PHONE, Served, fits_width, openid
from tests.queries import member_id

LONG = "社区敬老院陪老人聊天、打扫卫生并整理图书室旧书报刊，活动照片见 https://mp.weixin.qq.com/s/Xk3pQ9vTz7LmN2bR8cYw4dEfGh"


@pytest.fixture
async def busy(served: Served) -> Served:
    """Study, volunteer hours (one approved in chat, some pending) and so audit rows."""
    await served.say(openid("1001"), "学习 45")
    await served.say(openid("1002"), "志愿 1 清扫楼道")
    await served.say(openid("1002"), f"志愿 2 {LONG}")
    reply = await served.say(openid("1001"), f"志愿 3 {LONG}")
    entry = re.search(r"编号 (\d+)", reply)
    assert entry, reply
    assert "已通过" in await served.say(openid("1003"), f"通过 {entry.group(1)}")
    return served


@pytest.mark.parametrize(
    ("name", "path", "shows"),
    [
        ("members", "/admin/members", "张三"),
        ("member", "/admin/members/{member}", "积分明细"),
        ("approvals", "/admin/approvals", "mp.weixin.qq.com"),
        ("audit", "/admin/audit", "王芳"),
    ],
)
async def test_the_page_fits_a_phone_without_scrolling_sideways(
    browser: Any, busy: Served, tmp_path: Any, name: str, path: str, shows: str
) -> None:
    page = await browser.new_page(**PHONE)
    await busy.sign_in(page, "1003")
    member = await member_id(busy.conversation, "1001")

    opened = await page.goto(busy.base + path.format(member=member))
    assert opened.status == 200
    assert shows in await page.locator("main").inner_text()
    await page.screenshot(path=str(tmp_path / f"{name}-phone.png"), full_page=True)
    await fits_width(page)
    await page.close()
