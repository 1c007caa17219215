"""Sending through a OneBot v11 implementation's HTTP API (`send_private_msg`, `send_group_msg`).

The implementation drives a real QQ account by unofficial means: sending fast risks a ban,
so sends are paced (QIYI_ONEBOT_SEND_INTERVAL_SECONDS, with jitter), one at a time.
"""

from __future__ import annotations

import asyncio
import base64
import random
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bot.channels.outbound import Answer, TransientError
from bot.settings import Settings

Ready = Callable[[], Awaitable[None]]

# Answers after which sending to the same account again cannot help: NapCat's 1400 (the
# request is wrong for this user: not a QQ number it can message) and its wording when the
# account is not a friend (it cannot resolve the user). Timeouts and risk-control refusals
# (1200, 200) may pass: they are retried.
PERMANENT_RETCODES = frozenset({1400})
NOT_A_FRIEND = ("无法获取用户信息", "not a friend", "不是好友")


def permanent(answer: Answer) -> bool:
    """The account cannot be messaged privately (not a friend, no such user)."""
    wording = answer.errmsg.lower()
    return answer.errcode in PERMANENT_RETCODES or any(mark in wording for mark in NOT_A_FRIEND)


class OneBotApi:
    """`sleep` and `monotonic` pace the sends (the event loop's by default; tests pass a
    clock of their own, so hours of pacing take no time)."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        settings: Settings,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        assert settings.onebot_api_url
        self.http = http
        self.base = settings.onebot_api_url.rstrip("/")
        self.headers = (
            {"Authorization": f"Bearer {settings.onebot_access_token}"}
            if settings.onebot_access_token
            else {}
        )
        self.interval = settings.onebot_send_interval_seconds
        self._sleep = sleep
        self._monotonic = monotonic
        self._pace = asyncio.Lock()
        self._last: float | None = None

    def _now(self) -> float:
        return self._monotonic() if self._monotonic else asyncio.get_running_loop().time()

    async def _wait_turn(self) -> None:
        if self._last is not None and self.interval:
            gap = self.interval * random.uniform(1.0, 1.5)
            await self._sleep(max(0.0, self._last + gap - self._now()))
        self._last = self._now()

    async def _action(self, action: str, payload: dict[str, Any], ready: Ready | None) -> Answer:
        """One call when its turn comes. `ready` is awaited then, right before the request: it
        may raise to call the send off (the caller no longer holds what it was to send)."""
        async with self._pace:
            await self._wait_turn()
            if ready is not None:
                await ready()
            try:
                async with self.http.post(
                    f"{self.base}/{action}", json=payload, headers=self.headers
                ) as response:
                    if response.status >= 500:
                        raise TransientError(f"HTTP {response.status}")
                    if response.status >= 400:
                        return Answer(response.status, await response.text())
                    body = await response.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise TransientError(f"{type(exc).__name__}: {exc}") from None
            except ValueError as exc:  # not the implementation's JSON (a proxy's page)
                raise TransientError(f"not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise TransientError(f"not a JSON object: {str(body)[:100]}")
        retcode = int(body.get("retcode", 0 if body.get("status") == "ok" else -1))
        return Answer(
            retcode, str(body.get("wording") or body.get("message") or body.get("msg") or "")
        )

    async def send_private(self, user_id: str, text: str, ready: Ready | None = None) -> Answer:
        payload = {"user_id": int(user_id), "message": text}
        return await self._action("send_private_msg", payload, ready)

    async def send_group(
        self, group_id: str, text: str, image: str = "", ready: Ready | None = None
    ) -> Answer:
        """Text (sent as a segment, so brackets in it are not read as CQ codes) and an optional
        picture file, inlined as base64 (the implementation may run on another host)."""
        message: list[dict[str, Any]] = [{"type": "text", "data": {"text": text}}]
        if image:
            with open(image, "rb") as file:  # noqa: ASYNC230 (a small local chart)
                encoded = base64.b64encode(file.read()).decode()
            message.append({"type": "image", "data": {"file": f"base64://{encoded}"}})
        payload = {"group_id": int(group_id), "message": message}
        return await self._action("send_group_msg", payload, ready)
