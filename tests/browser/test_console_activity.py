"""新建活动 in a real browser, on a PC and on a 390-px phone: the office fills the form for
one branch with an end before the start, is told so beside the field (nothing published),
corrects it and finds the activity in the list — that branch's members notified as from
the chat."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect
from sqlmodel import select

from data.models import Activity, OutboxItem
from tests.browser.conftest import PC, PHONE, Served, fits_width


async def published(served: Served) -> list[Activity]:
    async with served.conversation.sessions() as session:
        return list(await session.exec(select(Activity)))


async def notified(served: Served) -> int:
    async with served.conversation.sessions() as session:
        rows = await session.exec(select(OutboxItem).where(OutboxItem.kind == "activity"))
        return len(list(rows))


@pytest.mark.parametrize("screen", ["pc", "phone"])
async def test_the_office_publishes_an_activity_from_the_form(
    browser: Any, served: Served, tmp_path: Any, screen: str
) -> None:
    page = await browser.new_page(**(PC if screen == "pc" else PHONE))
    await served.sign_in(page, "9001")
    await page.get_by_role("link", name="活动", exact=True).click()
    await page.get_by_role("link", name="新建活动").click()
    await page.get_by_label("活动类型").select_option("party_day")
    await page.get_by_role("textbox", name="主题").fill("学习新修订的条例")
    await page.get_by_label("开始时间").fill("2026-11-26T15:00")
    await page.get_by_label("结束时间").fill("2026-11-26T14:30")
    await page.get_by_role("textbox", name="地点").fill("三楼会议室")
    await page.get_by_label("第一党支部").check()
    await page.get_by_role("button", name="发布活动").click()

    problem = page.locator(".problem")
    await expect(problem).to_have_count(1)
    await expect(problem).to_have_text("结束时间必须晚于开始时间。")
    await expect(page.get_by_role("textbox", name="主题")).to_have_value("学习新修订的条例")  # kept
    await page.screenshot(path=str(tmp_path / f"activity-form-{screen}.png"), full_page=True)
    if screen == "phone":
        await fits_width(page)
    assert await published(served) == []

    await page.get_by_label("结束时间").fill("2026-11-26T16:30")
    await page.get_by_role("button", name="发布活动").click()

    await expect(page.locator("p.notice")).to_contain_text("已发布活动（编号 1）")
    row = page.locator("table.list tbody tr")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("学习新修订的条例")
    await expect(row).to_contain_text("11-26 15:00—16:30")
    await page.screenshot(path=str(tmp_path / f"activity-list-{screen}.png"), full_page=True)
    if screen == "phone":
        await fits_width(page)
    [activity] = await published(served)
    assert (activity.kind, activity.place) == ("party_day", "三楼会议室")
    assert await notified(served) == 3  # 第一党支部's three members
    await page.close()
