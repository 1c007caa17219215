"""通知 in a real browser: the office writes a notice to one branch, sees the message and how
many it reaches, sends it — twice, by a double click — and finds one push per member of that
branch on 推送."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect
from sqlmodel import col, select

from data.models import Member, OutboxItem, PushKind
from tests.browser.conftest import PC, Served


async def notice_rows(served: Served) -> list[str]:
    async with served.conversation.sessions() as session:
        rows = await session.exec(
            select(Member.roster_id)
            .join(OutboxItem, col(OutboxItem.member_id) == col(Member.id))
            .where(OutboxItem.kind == PushKind.NOTICE.value)
        )
        return sorted(rows)


async def test_a_notice_to_one_branch_is_queued_once_per_member(
    browser: Any, served: Served, tmp_path: Any
) -> None:
    page = await browser.new_page(**PC)
    await served.sign_in(page, "9001")
    await page.get_by_role("link", name="通知", exact=True).click()
    await page.get_by_role("link", name="写通知").click()
    await page.get_by_label("通知内容").fill("周五下午三点在三楼会议室开支部党员大会")
    await page.get_by_label("第二党支部").check()
    await page.get_by_role("button", name="预览").click()

    preview = page.locator("pre.chat-preview")
    await expect(preview).to_contain_text("【通知】周五下午三点在三楼会议室开支部党员大会")
    await expect(page.locator("section.card").first).to_contain_text("符合条件的成员 2 人")
    await page.screenshot(path=str(tmp_path / "notice-preview.png"), full_page=True)
    assert await notice_rows(served) == []  # a preview sends nothing

    await page.get_by_role("button", name="确认发送").dblclick()
    await expect(page.locator(".notice")).to_contain_text("发给 2 人")
    assert await notice_rows(served) == ["2001", "2002"]

    await page.get_by_role("link", name="推送", exact=True).click()
    await page.get_by_label("类别").select_option("notice")
    await page.get_by_role("button", name="筛选").click()
    rows = page.locator("table.list tbody tr")
    await expect(rows).to_have_count(2)
    await expect(page.locator("table.list")).to_contain_text("赵强")
    await expect(page.locator("table.list")).to_contain_text("陈静")
    await page.screenshot(path=str(tmp_path / "notice-outbox.png"), full_page=True)
    await page.close()
