"""A console on the real server app, and a helper that signs staff in through the chat."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import create_app
from bot.appkeys import CONVERSATION
from bot.clock import FixedClock
from bot.settings import Settings
from tests.conftest import ROSTER, Chat, seed

AppClientFactory = Callable[[Any], Awaitable[TestClient]]
CODE = re.compile(r"登录 (\d{6})")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"


@dataclass
class Console:
    client: TestClient
    chat: Chat
    clock: FixedClock

    async def show_code(self) -> str:
        response = await self.client.get("/admin/login", headers={"User-Agent": BROWSER})
        assert response.status == 200, await response.text()
        found = CODE.search(await response.text())
        assert found, "the sign-in page shows no code"
        return found.group(1)

    async def sign_in(self, roster_id: str) -> str:
        """Signs this browser in as the member by sending the page's code through the chat;
        returns the CSRF token of the new session."""
        code = await self.show_code()
        reply = await self.chat.say(roster_id, f"登录 {code}")
        assert "已确认登录" in reply, reply
        response = await self.client.get(
            "/admin/login", allow_redirects=False, headers={"User-Agent": BROWSER}
        )
        assert response.status == 303 and response.headers["Location"] == "/admin/"
        return await self.csrf()

    async def csrf(self) -> str:
        page = await self.client.get("/admin/")
        assert page.status == 200, await page.text()
        found = CSRF.search(await page.text())
        assert found
        return found.group(1)


async def start_console(
    aiohttp_client: AppClientFactory, settings: Settings, clock: FixedClock
) -> Console:
    client = await aiohttp_client(create_app(settings, clock, background=False))
    conversation = client.app[CONVERSATION]
    await seed(conversation)
    chat = Chat(conversation)
    for row in ROSTER:
        await chat.bind(row.member_id)
    return Console(client, chat, clock)


@pytest.fixture
async def console(
    aiohttp_client: AppClientFactory, settings: Settings, clock: FixedClock, engine: AsyncEngine
) -> Console:
    return await start_console(aiohttp_client, settings, clock)
