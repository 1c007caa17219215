"""内容 in a real browser: the office writes a lesson with a quiz for later, watching the
member's message take shape as it types (htmx), is told at the field that the quiz has no
answer, fixes it, previews it, publishes it now; a member then
reads it with `微党课` over the WeChat webhook and answers its quiz."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.async_api import expect

from bot.settings import Settings
from tests.browser.conftest import PC, PHONE, Served, fits_width, openid
from tests.conftest import make_settings

TITLE = "学习新修订的支部工作条例"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # A public address: a cover is shown to members at it, so the preview offers a 图文 card.
    return make_settings(database_url, media_dir=tmp_path / "media", public_url="http://qiyi.test")


def cover_png() -> bytes:
    """A real picture (the party red with a gold band) for the cover."""
    picture = Image.new("RGB", (900, 500), (196, 30, 58))
    picture.paste((255, 215, 0), (0, 380, 900, 420))
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


async def test_a_lesson_written_scheduled_and_published_is_read_and_answered_in_chat(
    browser: Any, served: Served, tmp_path: Any
) -> None:
    page = await browser.new_page(**PC)
    await served.sign_in(page, "9001")
    await page.get_by_role("link", name="内容").click()
    await page.get_by_role("link", name="写微党课").click()

    await page.get_by_label("标题").fill(TITLE)
    await page.get_by_label("摘要").fill("条例的要点")
    await page.get_by_label("正文").fill("一、支部是党的基础组织。\n二、三会一课要经常。")
    await page.get_by_label("发布时间").fill("2026-11-26T07:30")  # tomorrow morning
    # htmx shows the member's message as it is typed (no button pressed).
    await expect(page.locator("#live-preview")).to_contain_text(f"【微党课】{TITLE}")
    await page.get_by_label("题目").fill("支部党员大会一般多久召开一次？")
    await page.get_by_label("选项 A").fill("每月")
    await page.get_by_label("选项 B").fill("每季度")
    await expect(page.locator("#live-preview")).to_contain_text("正确答案：必填")
    await page.get_by_role("button", name="保存").click()

    await expect(page.get_by_role("alert")).to_contain_text("有 1 处需要修改")
    await expect(page.locator("#problem-quiz_answer")).to_have_text("必填。")
    await page.screenshot(path=str(tmp_path / "content-problem.png"), full_page=True)
    assert TITLE not in await served.say(openid("1001"), "微党课")

    await page.get_by_label("正确答案").select_option("B")
    await expect(page.locator("#live-preview")).to_contain_text("【随堂测验】")
    await page.get_by_role("button", name="保存").click()
    await expect(page.locator(".notice")).to_contain_text("已保存")
    await expect(page.locator("h1")).to_contain_text("定时发布")
    assert TITLE not in await served.say(openid("1001"), "微党课")  # not before its time

    await page.get_by_role("button", name="立即发布").click()
    await expect(page.locator(".notice")).to_contain_text("已发布")
    await page.screenshot(path=str(tmp_path / "content-published.png"), full_page=True)
    lesson = await served.say(openid("1001"), "微党课")
    assert f"【微党课】{TITLE}" in lesson and "B. 每季度" in lesson
    assert "回答正确" in await served.say(openid("1001"), "答 B")

    # A cover and a link: the preview says WeChat gets a 图文 card, and shows the cover.
    cover = tmp_path / "封面.png"
    cover.write_bytes(cover_png())
    await page.locator("input[name=url]").fill("https://example.org/lesson/1")
    await page.locator("input[name=cover]").set_input_files(str(cover))
    await page.get_by_role("button", name="保存").click()
    await expect(page.locator(".notice")).to_contain_text("已保存")
    await expect(page.locator("img.cover").first).to_be_visible()
    await expect(page.locator("#live-preview")).to_contain_text("图文消息")
    assert await page.locator("img.cover").first.evaluate("i => i.naturalWidth") == 900
    sha256 = hashlib.sha256(cover.read_bytes()).hexdigest()
    public = await page.request.get(f"{served.base}/media/c/{sha256}.png")
    assert public.status == 200 and await public.body() == cover.read_bytes()
    await page.screenshot(path=str(tmp_path / "content-cover.png"), full_page=True)

    phone = await browser.new_page(**PHONE)
    await served.sign_in(phone, "9001")
    await phone.goto(page.url)
    await fits_width(phone)
    await phone.screenshot(path=str(tmp_path / "content-phone.png"), full_page=True)
    await phone.goto(f"{served.base}/admin/content")
    await fits_width(phone)
    await page.close()
    await phone.close()
