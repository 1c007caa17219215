"""Browser tests: Playwright driving Debian's Chromium headless (PROTOCOLS.md: `playwright
install` cannot download browsers here). Without the browser these tests are skipped with
that reason — except under CI, where they are required.

The app is served on loopback with the sample roster, every member bound on WeChat; members
talk to it through the real `/wechat` webhook, staff sign in by sending the page's code."""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import create_app
from bot.appkeys import CONVERSATION
from bot.clock import FixedClock
from bot.conversation import Conversation
from bot.messages import Sender
from bot.settings import Settings
from data import members
from data.db import transaction
from tests.conftest import ROSTER, TOKEN, seed

CHROMIUM = "/usr/bin/chromium"
ServerFactory = Callable[..., Awaitable[TestServer]]
# Page options (`browser.new_page(**PHONE)`): a phone's width, or a PC's; a Chinese browser.
PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "locale": "zh-CN"}
PC: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}, "locale": "zh-CN"}


def openid(roster_id: str) -> str:
    """The WeChat account each roster member is bound to before a test."""
    return f"oTestMember{roster_id}".ljust(28, "x")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
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


@dataclass
class Served:
    """The whole app on loopback: its address, its clock and its conversation."""

    base: str
    clock: FixedClock
    conversation: Conversation
    app: web.Application
    _sent: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def say(self, sender_openid: str, text: str) -> str:
        """A text message through the WeChat webhook; the reply's content."""
        return await self._send(sender_openid, "text", f"<Content><![CDATA[{text}]]></Content>")

    async def picture(self, sender_openid: str, media_id: str) -> str:
        """A picture message through the WeChat webhook (the platform's media id)."""
        fields = (
            f"<PicUrl><![CDATA[http://mmbiz.example/{media_id}]]></PicUrl>"
            f"<MediaId><![CDATA[{media_id}]]></MediaId>"
        )
        return await self._send(sender_openid, "image", fields)

    async def _send(self, sender_openid: str, kind: str, fields: str) -> str:
        sent = next(self._sent)
        now = int(self.clock.now().timestamp())
        # A fresh MsgId and nonce each time: the webhook dedupes both (a repeat is a retry).
        nonce = f"{20261202 + sent}"
        xml = (
            "<xml><ToUserName><![CDATA[gh_test]]></ToUserName>"
            f"<FromUserName><![CDATA[{sender_openid}]]></FromUserName>"
            f"<CreateTime>{now}</CreateTime><MsgType><![CDATA[{kind}]]></MsgType>"
            f"{fields}<MsgId>{now}{sent:04d}</MsgId></xml>"
        )
        async with ClientSession() as http:
            query = _signed_query(now, nonce)
            async with http.post(f"{self.base}/wechat", params=query, data=xml.encode()) as got:
                assert got.status == 200
                body = await got.text()
        if not body.startswith("<xml"):
            return body  # "success": acknowledged without a message
        return ET.fromstring(body).findtext("Content") or ""

    async def sign_in(self, page: Any, roster_id: str) -> None:
        """Signs the browser page in as the staff member, by sending the code it shows."""
        await page.goto(f"{self.base}/admin/login")
        code = re.search(r"\d{6}", await page.locator(".code").inner_text())
        assert code, "the sign-in page shows no code"
        reply = await self.say(openid(roster_id), f"登录 {code.group(0)}")
        assert "已确认登录管理后台" in reply, reply
        # The page reloads itself every few seconds; the test reloads at once instead.
        await page.reload()
        if page.url != f"{self.base}/admin/":
            # On a busy machine the page's own reload came first and signed this browser in
            # (its session cookie is set); the test's reload then asked for a new code.
            await page.goto(f"{self.base}/admin/")
        assert page.url == f"{self.base}/admin/"


def _signed_query(timestamp: int, nonce: str) -> dict[str, str]:
    signature = hashlib.sha1("".join(sorted([TOKEN, str(timestamp), nonce])).encode()).hexdigest()
    return {"signature": signature, "timestamp": str(timestamp), "nonce": nonce}


@pytest.fixture
async def served(
    aiohttp_server: ServerFactory, settings: Settings, clock: FixedClock, engine: AsyncEngine
) -> Served:
    return await serve(aiohttp_server, settings, clock)


async def serve(aiohttp_server: ServerFactory, settings: Settings, clock: FixedClock) -> Served:
    """The app on loopback with the sample roster, each member bound to `openid(…)`."""
    server = await aiohttp_server(create_app(settings, clock, background=False))
    conversation = server.app[CONVERSATION]
    await seed(conversation)
    async with transaction(conversation.sessions) as session:
        for row in ROSTER:
            member = await members.member_by_roster_id(session, row.member_id)
            assert member is not None
            await members.bind(
                session, Sender("wechat", openid(row.member_id)), member, clock.now()
            )
    return Served(str(server.make_url("")).rstrip("/"), clock, conversation, server.app)


async def fits_width(page: Any) -> None:
    """The page does not scroll sideways."""
    widths = await page.evaluate(
        "[document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"{page.url} is {widths[0]} px wide in {widths[1]} px"
