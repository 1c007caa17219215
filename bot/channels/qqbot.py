"""The official QQ Bot platform: signed webhook events at `/qqbot`, passive replies by API.

Since 2025-04-21 the platform sends no unsolicited messages at all: a member reachable only
here gets pushes through the mailbox, prepended to the reply to their next message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import aiohttp
from aiohttp import web

from bot.appkeys import CONVERSATION, QQBOT_API
from bot.channels.freshness import unix_timestamp, within
from bot.channels.qqbot_signing import private_key, sign, verify
from bot.channels.token_cache import TokenCache
from bot.clock import Clock, unix_seconds
from bot.messages import Inbound, InboundKind, Sender, bounded_text
from bot.settings import Settings
from data.db import Sessions

log = logging.getLogger(__name__)

CHANNEL = "qqbot"  # private chats: the user's openid
GROUP_CHANNEL = "qqbot-group"  # group chats: the member's openid in groups
ACK = {"op": 12, "d": 0}
MESSAGE_EVENTS = {"GROUP_AT_MESSAGE_CREATE", "C2C_MESSAGE_CREATE"}
PLAIN_TOKEN = re.compile(r"[A-Za-z0-9_\-]{1,128}")


class QQBotApi:
    """Passive replies through the bot API, with the app access token cached like WeChat's."""

    def __init__(
        self, http: aiohttp.ClientSession, sessions: Sessions, clock: Clock, settings: Settings
    ) -> None:
        assert settings.qqbot_appid and settings.qqbot_secret
        self.http = http
        self.base = settings.qqbot_api_base
        appid, secret, url = settings.qqbot_appid, settings.qqbot_secret, settings.qqbot_token_url

        async def fetch() -> tuple[str, int]:
            async with http.post(url, json={"appId": appid, "clientSecret": secret}) as response:
                body = await response.json(content_type=None)
            if "access_token" not in body:
                raise RuntimeError(f"QQ bot token refused: {body}")
            return str(body["access_token"]), int(body.get("expires_in", 7200))  # a string there

        self.tokens = TokenCache(sessions, clock, f"qqbot:{appid}", fetch)

    async def reply(self, path: str, content: str, msg_id: str, msg_seq: int = 1) -> bool:
        """POST a passive reply to `path` (/v2/groups/{id}/messages or /v2/users/{id}/messages)."""
        payload = {"content": content, "msg_type": 0, "msg_id": msg_id, "msg_seq": msg_seq}
        token = await self.tokens.get()
        for attempt in range(2):
            headers = {"Authorization": f"QQBot {token}"}
            async with self.http.post(
                f"{self.base}{path}", json=payload, headers=headers
            ) as answer:
                if answer.status == 401 and not attempt:
                    token = await self.tokens.refresh(stale=token)
                    continue
                if answer.status >= 400:
                    log.warning("QQ bot reply refused: %s %s", answer.status, await answer.text())
                    return False
                return True
        return False


class QQBotWebhook:
    """Verifies, acknowledges at once, and answers in the background through the API."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        assert settings.qqbot_secret
        self.key = private_key(settings.qqbot_secret)
        self.clock = clock
        self.window = settings.replay_window_seconds
        self.tasks: set[asyncio.Task[None]] = set()

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/qqbot", self.receive)]

    async def drain(self) -> None:
        """Wait for the replies still being written (at shutdown)."""
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        signature = request.headers.get("X-Signature-Ed25519", "")
        timestamp = request.headers.get("X-Signature-Timestamp", "")
        signed = bool(signature) and verify(self.key, signature, timestamp, body)
        if signature and not signed:
            log.warning("refused QQ bot event: bad signature")
            return web.Response(status=403, text="bad signature")
        # The signature covers the timestamp: a captured event replayed later is refused by
        # its age, and within the window by the message dedupe.
        moment = unix_timestamp(timestamp)
        if signed and (moment is None or not within(moment, unix_seconds(self.clock), self.window)):
            log.warning("refused QQ bot event: stale timestamp %r", timestamp[:20])
            return web.Response(status=403, text="stale timestamp")
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise ValueError("not an object")
        except ValueError:
            return web.Response(status=400, text="not a JSON payload")
        if payload.get("op") == 13:
            return self._validate(payload)
        if not signed:
            return web.Response(status=403, text="unsigned event")
        if payload.get("op") == 0 and payload.get("t") in MESSAGE_EVENTS:
            try:
                inbound, path, msg_id = self._inbound(payload)
            except (KeyError, TypeError) as problem:
                log.warning("unreadable QQ bot event: %r", problem)
                return web.Response(status=400, text="unreadable event")
            task = asyncio.create_task(self._answer(request.app, inbound, path, msg_id))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return web.json_response(ACK)

    def _validate(self, payload: dict[str, Any]) -> web.Response:
        """Callback-URL validation: sign event_ts + plain_token with the bot's key."""
        data = payload.get("d") or {}
        plain_token, event_ts = str(data.get("plain_token", "")), str(data.get("event_ts", ""))
        # Only a timestamp and a token are ever signed here: signing whatever is asked
        # would let anyone forge `timestamp + body` signatures of events.
        if not event_ts.isdigit() or not PLAIN_TOKEN.fullmatch(plain_token):
            return web.Response(status=400, text="bad plain_token/event_ts")
        proof = sign(self.key, (event_ts + plain_token).encode())
        return web.json_response({"plain_token": plain_token, "signature": proof})

    def _inbound(self, payload: dict[str, Any]) -> tuple[Inbound, str, str]:
        data = payload["d"]
        msg_id = str(data["id"])
        # Group content has a leading space.
        text = bounded_text(str(data.get("content", ""))).strip()
        if payload["t"] == "GROUP_AT_MESSAGE_CREATE":
            sender = Sender(GROUP_CHANNEL, str(data["author"]["member_openid"]))
            path = f"/v2/groups/{data['group_openid']}/messages"
        else:
            sender = Sender(CHANNEL, str(data["author"]["user_openid"]))
            path = f"/v2/users/{data['author']['user_openid']}/messages"
        key = str(payload.get("id") or msg_id)
        kind = InboundKind.TEXT if text else InboundKind.UNSUPPORTED
        return Inbound(sender, key, kind, self.clock.now(), text), path, msg_id

    async def _answer(self, app: web.Application, inbound: Inbound, path: str, msg_id: str) -> None:
        try:
            reply = await app[CONVERSATION].respond(inbound)
            api = app.get(QQBOT_API)
            if reply and api is not None:
                await api.reply(path, reply, msg_id)
        except Exception:
            log.exception("QQ bot reply failed for %s", inbound.key)
