"""Sending through a OneBot v11 implementation's HTTP API (`send_private_msg`, `send_group_msg`).

The implementation drives a real QQ account by unofficial means: sending fast risks a ban,
so sends are paced (QIYI_ONEBOT_SEND_INTERVAL_SECONDS, with jitter), one at a time.
"""

from __future__ import annotations

import asyncio
import base64
import random
from typing import Any

import aiohttp

from bot.channels.outbound import Answer, TransientError
from bot.settings import Settings


class OneBotApi:
    def __init__(self, http: aiohttp.ClientSession, settings: Settings) -> None:
        assert settings.onebot_api_url
        self.http = http
        self.base = settings.onebot_api_url.rstrip("/")
        self.headers = (
            {"Authorization": f"Bearer {settings.onebot_access_token}"}
            if settings.onebot_access_token
            else {}
        )
        self.interval = settings.onebot_send_interval_seconds
        self._pace = asyncio.Lock()
        self._last: float | None = None

    async def _wait_turn(self) -> None:
        loop = asyncio.get_running_loop()
        if self._last is not None and self.interval:
            gap = self.interval * random.uniform(1.0, 1.5)
            await asyncio.sleep(max(0.0, self._last + gap - loop.time()))
        self._last = loop.time()

    async def _action(self, action: str, payload: dict[str, Any]) -> Answer:
        async with self._pace:
            await self._wait_turn()
            try:
                async with self.http.post(
                    f"{self.base}/{action}", json=payload, headers=self.headers
                ) as response:
                    if response.status >= 500:
                        raise TransientError(f"HTTP {response.status}")
                    if response.status >= 400:
                        return Answer(response.status, await response.text())
                    body: dict[str, Any] = await response.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise TransientError(f"{type(exc).__name__}: {exc}") from None
        retcode = int(body.get("retcode", 0 if body.get("status") == "ok" else -1))
        return Answer(
            retcode, str(body.get("wording") or body.get("message") or body.get("msg") or "")
        )

    async def send_private(self, user_id: str, text: str) -> Answer:
        return await self._action("send_private_msg", {"user_id": int(user_id), "message": text})

    async def send_group(self, group_id: str, text: str, image: str = "") -> Answer:
        """Text (sent as a segment, so brackets in it are not read as CQ codes) and an optional
        picture file, inlined as base64 (the implementation may run on another host)."""
        message: list[dict[str, Any]] = [{"type": "text", "data": {"text": text}}]
        if image:
            with open(image, "rb") as file:  # noqa: ASYNC230 (a small local chart)
                encoded = base64.b64encode(file.read()).decode()
            message.append({"type": "image", "data": {"file": f"base64://{encoded}"}})
        return await self._action("send_group_msg", {"group_id": int(group_id), "message": message})
