"""Browser tests: Playwright driving Debian's Chromium headless (PROTOCOLS.md: `playwright
install` cannot download browsers here). Without the browser these tests are skipped with
that reason — except under CI, where they are required."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from bot.app import create_app
from bot.appkeys import CONVERSATION
from bot.clock import FixedClock
from bot.conversation import Conversation
from bot.messages import Sender
from bot.settings import Settings
from data import members
from data.db import transaction
from tests.conftest import TOKEN, seed

CHROMIUM = "/usr/bin/chromium"
ServerFactory = Callable[..., Awaitable[TestServer]]


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    if not shutil.which(CHROMIUM) or not _playwright_installed():
        reason = f"browser tests need Debian's chromium at {CHROMIUM} and playwright"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {reason}")
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        await chromium.close()


def _playwright_installed() -> bool:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return False
    return True


async def serve_console(
    aiohttp_server: ServerFactory,
    settings: Settings,
    clock: FixedClock,
    roster_id: str,
    openid: str,
) -> tuple[str, Conversation]:
    """The server on loopback with the sample roster, the member `roster_id` bound to WeChat
    as `openid` (to sign in with the page's code); its address and conversation."""
    server = await aiohttp_server(create_app(settings, clock, background=False))
    conversation = server.app[CONVERSATION]
    await seed(conversation)
    async with transaction(conversation.sessions) as session:
        staff = await members.member_by_roster_id(session, roster_id)
        assert staff is not None
        await members.bind(session, Sender("wechat", openid), staff, clock.now())
    return str(server.make_url("")).rstrip("/"), conversation


def _signed_query(timestamp: int, nonce: str) -> dict[str, str]:
    signature = hashlib.sha1("".join(sorted([TOKEN, str(timestamp), nonce])).encode()).hexdigest()
    return {"signature": signature, "timestamp": str(timestamp), "nonce": nonce}


async def send_wechat_text(base: str, clock: FixedClock, openid: str, text: str) -> str:
    """Send `text` to the WeChat webhook as `openid`; the bot's reply XML."""
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


async def sign_in(page: Any, base: str, clock: FixedClock, openid: str) -> None:
    """Sign the page in by sending the code it shows from the WeChat account `openid`."""
    await page.goto(f"{base}/admin/login")
    shown = await page.locator(".code").inner_text()
    code = "".join(c for c in shown if c.isdigit())
    await send_wechat_text(base, clock, openid, f"登录 {code}")
    await page.reload()
    assert page.url == f"{base}/admin/", page.url
