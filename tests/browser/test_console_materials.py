"""资料 and 月打分 in a real browser: a secretary sends a caption and two pictures over the
WeChat webhook; the durable fetch keeps them (from the fake WeChat API on loopback); the admin
sees them in the gallery as thumbnails, grades the month 优, closes it, and finds the grade in
the month's report on the page and in its workbook."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import aiohttp
from openpyxl import load_workbook
from PIL import Image
from playwright.async_api import expect
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import wechat_api_for
from bot.appkeys import MEDIA_STORE, SESSIONS
from bot.clock import FixedClock
from bot.material_fetch import MaterialFetcher
from tests.browser.conftest import PC, ServerFactory, fits_width, openid, serve
from tests.conftest import SHANGHAI, make_settings
from tests.fakes.wechat_api import FakeWeChat


def photo(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1200, 900), colour).save(out, format="JPEG")
    return out.getvalue()


async def test_pictures_sent_by_chat_are_graded_and_the_closed_months_report_shows_it(
    browser: Any,
    aiohttp_server: ServerFactory,
    database_url: str,
    clock: FixedClock,
    engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    fake = FakeWeChat()
    platform = await aiohttp_server(fake.app())
    settings = make_settings(
        database_url,
        wechat_appid=fake.appid,
        wechat_secret=fake.secret,
        wechat_api_base=str(platform.make_url("")).rstrip("/"),
        media_dir=tmp_path / "media",
    )
    clock.set(dt.datetime(2026, 11, 30, 10, 0, tzinfo=SHANGHAI))
    served = await serve(aiohttp_server, settings, clock)

    secretary = openid("1003")
    assert "请在 10 分钟内发送图片或视频" in await served.say(secretary, "资料 主题党日活动照片")
    for number, colour in enumerate(((200, 40, 40), (40, 120, 200))):
        picture = photo(colour)
        media_id = fake.add_media(picture, content_type="image/jpeg", filename=f"{number}.jpg")
        assert "本支部本月共" in await served.picture(secretary, media_id)
    async with aiohttp.ClientSession() as http:
        sessions = served.app[SESSIONS]
        api = wechat_api_for(settings, http, sessions, clock)
        fetcher = MaterialFetcher(settings, clock, sessions, served.app[MEDIA_STORE], http, api)
        assert await fetcher.run_once() == {"stored": 2}  # the server's job, run once here

    clock.set(dt.datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI))  # November is over
    page = await browser.new_page(**PC)
    await served.sign_in(page, "9001")
    await page.goto(f"{served.base}/admin/materials?month=2026-11")
    await page.get_by_role("link", name="第一党支部").click()
    pictures = page.locator("ul.gallery img")
    await expect(pictures).to_have_count(2)
    await expect(page.locator("ul.gallery")).to_contain_text("主题党日活动照片")
    for index in range(2):  # the thumbnails were made and shown
        width = await pictures.nth(index).evaluate("img => img.complete && img.naturalWidth")
        assert width == 320, width

    await page.get_by_label("优", exact=True).check()
    await page.get_by_label("评语").fill("照片清楚，活动记录完整")
    await page.get_by_role("button", name="保存打分").click()
    await expect(page.locator("main")).to_contain_text("照片清楚，活动记录完整")
    await page.screenshot(path=str(tmp_path / "gallery-graded.png"), full_page=True)
    await fits_width(page)

    await page.goto(f"{served.base}/admin/materials?month=2026-11")
    await page.get_by_role("link", name="关账…").click()
    await page.get_by_role("button", name="确认关账").click()
    await expect(page.locator("main")).to_contain_text("已关账")

    await page.goto(f"{served.base}/admin/reports?period=2026-11")
    # The first view computes the report aside; the page refreshes itself until it is in.
    row = page.locator("table.list tr", has_text="第一党支部")
    await expect(row.locator('td[data-label="月打分"]')).to_have_text("100%", timeout=30_000)
    await expect(page.locator("section.card h2").first).to_contain_text("已关账")
    await page.screenshot(path=str(tmp_path / "report-closed.png"), full_page=True)

    async with page.expect_download() as waiting:
        await page.get_by_role("link", name="xlsx", exact=True).click()
    download = await waiting.value
    assert download.suggested_filename.endswith(".xlsx")
    kept = tmp_path / "report.xlsx"
    await download.save_as(kept)
    workbook = load_workbook(kept)
    sheet = workbook["支部排名"] if "支部排名" in workbook.sheetnames else workbook.worksheets[0]
    header = [cell.value for cell in sheet[1]]
    column = header.index("月打分")
    graded = {row[1].value: row[column].value for row in sheet.iter_rows(min_row=2)}
    assert graded["第一党支部"] == 1.0
    assert graded["第二党支部"] == "待评"
    await page.close()
