"""In a real browser: a secretary signs in at a PC with the code sent through the WeChat
webhook, sees the overview, then signs out; the overview fits a 390-px phone screen."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import create_app
from bot.appkeys import CONVERSATION
from bot.clock import FixedClock
from bot.messages import Sender
from bot.settings import Settings
from data import members
from data.db import transaction
from tests.conftest import TOKEN, seed

ServerFactory = Callable[..., Awaitable[TestServer]]
SECRETARY_OPENID = "oSecretary1003xxxxxxxxxxxxxx"


def _signed_query(timestamp: int, nonce: str) -> dict[str, str]:
    signature = hashlib.sha1("".join(sorted([TOKEN, str(timestamp), nonce])).encode()).hexdigest()
    return {"signature": signature, "timestamp": str(timestamp), "nonce": nonce}


async def _send_wechat_text(base: str, clock: FixedClock, openid: str, text: str) -> str:
    now = int(clock.now().timestamp())
    xml = (
        "<xml><ToUserName><![CDATA[gh_test]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{now}</CreateTime>"
        f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{text}]]></Content>"
        f"<MsgId>{now}001</MsgId></xml>"
    )
    async with ClientSession() as http:
        query = _signed_query(now, "20261202")
        async with http.post(f"{base}/wechat", params=query, data=xml.encode()) as response:
            assert response.status == 200
            return await response.text()


@pytest.fixture
async def served(
    aiohttp_server: ServerFactory, settings: Settings, clock: FixedClock, engine: AsyncEngine
) -> tuple[str, FixedClock]:
    server = await aiohttp_server(create_app(settings, clock, background=False))
    conversation = server.app[CONVERSATION]
    await seed(conversation)
    async with transaction(conversation.sessions) as session:
        secretary = await members.member_by_roster_id(session, "1003")
        assert secretary is not None
        await members.bind(session, Sender("wechat", SECRETARY_OPENID), secretary, clock.now())
    return str(server.make_url("")).rstrip("/"), clock


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

    reply = await _send_wechat_text(base, clock, SECRETARY_OPENID, f"登录 {code.group(1)}")
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
    await page.goto(f"{base}/admin/login")
    code = re.search(r"\d{6}", await page.locator(".code").inner_text())
    assert code
    await _send_wechat_text(base, clock, SECRETARY_OPENID, f"登录 {code.group(0)}")
    await page.reload()
    assert page.url == f"{base}/admin/"

    widths = await page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], widths
    await page.close()
