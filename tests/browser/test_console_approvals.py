"""审核 in a real browser: members submit volunteer hours through the WeChat webhook; the
branch's secretary ticks entries and approves them in one go, or rejects one with a reason;
the member then sees the points (积分) or the reason (the next reply carries the notice)."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import expect
from sqlmodel import select

from data.models import OutboxItem, VolunteerEntry
from tests.browser.conftest import PC, Served, openid
from tests.queries import member_id

# The member's three entries: hours and what they did (1.5 hours: half hours count).
SUBMITTED = [(2, "社区敬老院陪老人聊天"), (1, "清扫楼道"), (1.5, "义务献血宣传")]


async def submit(served: Served, roster_id: str, hours: float, what: str) -> int:
    reply = await served.say(openid(roster_id), f"志愿 {hours:g} {what}")
    found = re.search(r"编号 (\d+)", reply)
    assert found, reply
    return int(found.group(1))


async def points_total(served: Served, roster_id: str) -> int:
    """累计积分 in the member's answer to `积分`."""
    reply = await served.say(openid(roster_id), "积分")
    found = re.search(r"累计积分：(\d+)", reply)
    assert found, reply
    return int(found.group(1))


async def state_of(served: Served, entry_id: int) -> str:
    async with served.conversation.sessions() as session:
        entry = await session.get(VolunteerEntry, entry_id)
        assert entry is not None
        return entry.state


async def test_three_entries_approved_at_once_raise_the_members_points(
    browser: Any, served: Served, tmp_path: Any
) -> None:
    entries = [await submit(served, "1001", hours, what) for hours, what in SUBMITTED]
    other = await submit(served, "1002", 3, "社区义诊引导")
    before = await points_total(served, "1001")
    page = await browser.new_page(**PC)
    await served.sign_in(page, "1003")

    await page.get_by_role("link", name="审核").click()
    await expect(page.locator("h1")).to_contain_text("4 条待审核")
    for entry in entries:
        await page.get_by_label(f"选择 #{entry}").check()
    await page.screenshot(path=str(tmp_path / "approvals-selected.png"), full_page=True)
    await page.get_by_role("button", name="通过所选").click()

    await expect(page.locator(".notice")).to_contain_text("已通过 3 条")
    await expect(page.locator("h1")).to_contain_text("1 条待审核")
    await expect(page.get_by_label(f"选择 #{other}")).to_be_visible()
    for entry in entries:
        await expect(page.get_by_label(f"选择 #{entry}")).to_have_count(0)
    await page.screenshot(path=str(tmp_path / "approvals-done.png"), full_page=True)

    per_hour = served.conversation.rules.points.volunteer_per_hour
    expected = sum(hours for hours, _ in SUBMITTED) * per_hour
    assert expected > 0
    assert await points_total(served, "1001") == before + expected
    assert await state_of(served, other) == "pending"
    await page.close()


async def test_a_rejected_entry_tells_the_member_the_reason(
    browser: Any, served: Served, tmp_path: Any
) -> None:
    entry = await submit(served, "1001", 2, "社区敬老院陪老人聊天")
    reason = "缺少活动照片，请补交后重新提交"
    page = await browser.new_page(**PC)
    await served.sign_in(page, "1003")

    await page.get_by_role("link", name="审核").click()
    await page.get_by_label(f"选择 #{entry}").check()
    await page.get_by_label("驳回原因").fill(reason)
    await page.get_by_role("button", name="驳回所选").click()

    await expect(page.locator(".notice")).to_contain_text("已驳回 1 条")
    await expect(page.get_by_label(f"选择 #{entry}")).to_have_count(0)
    await expect(page.get_by_text("没有待审核的志愿服务")).to_be_visible()
    await page.screenshot(path=str(tmp_path / "approvals-rejected.png"), full_page=True)
    assert await state_of(served, entry) == "rejected"

    mid = await member_id(served.conversation, "1001")
    async with served.conversation.sessions() as session:
        statement = select(OutboxItem).where(
            OutboxItem.member_id == mid, OutboxItem.kind == "review"
        )
        [notice] = (await session.exec(statement)).all()
    assert reason in notice.text and f"#{entry}" in notice.text
    # The member's next message is answered with the notice in front.
    reply = await served.say(openid("1001"), "今日")
    assert reason in reply and "未通过审核" in reply, reply
    await page.close()
