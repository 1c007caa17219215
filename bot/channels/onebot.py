"""QQ through OneBot v11 (NapCat and others): events by HTTP POST to `/onebot`, answers as the
quick operation in the HTTP response, so a command needs no outbound call."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from typing import Any

from aiohttp import web

from bot.appkeys import CONVERSATION
from bot.channels.onebot_message import read
from bot.clock import Clock, unix_seconds
from bot.messages import Inbound, InboundKind, Sender, bounded_text
from bot.settings import Settings

log = logging.getLogger(__name__)

CHANNEL = "qq"
MAX_BODY_BYTES = 1024 * 1024
SIGNATURE_SHAPE = re.compile(r"sha1=[0-9a-fA-F]{40}")


def signature(secret: str, body: bytes) -> str:
    """`X-Signature` of a OneBot HTTP POST: sha1=<hex HMAC-SHA1(secret, raw body)>."""
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def signed(secret: str, body: bytes, given: str | None) -> bool:
    """Whether `given` is the body's `X-Signature`, compared in constant time. The shape is
    checked first: `hmac.compare_digest` raises TypeError on non-ASCII text."""
    if given is None or not SIGNATURE_SHAPE.fullmatch(given):
        return False
    return hmac.compare_digest(signature(secret, body).encode(), given.lower().encode())


class OneBotWebhook:
    """Translates OneBot events to `Inbound` and replies to quick operations; decides nothing."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        settings.require_onebot()
        self.secret = settings.onebot_secret
        if not self.secret:
            log.warning("QIYI_ONEBOT_ALLOW_UNSIGNED: /onebot accepts unsigned events")
        self.group_commands = settings.onebot_group_commands
        self.clock = clock
        # OneBot sends no timestamp header: the event's own `time` (inside the signed body)
        # bounds a replay, and a clock ahead of ours by more than the replay window is not
        # believed either.
        self.max_age = settings.onebot_max_event_age_seconds
        self.ahead = settings.replay_window_seconds

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/onebot", self.receive)]

    async def receive(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if self.secret and not signed(self.secret, body, request.headers.get("X-Signature")):
            log.warning("refused OneBot event: bad signature")
            return web.Response(status=403, text="bad signature")
        try:
            event = json.loads(body)
            if not isinstance(event, dict):
                raise ValueError("not an object")
        except ValueError:
            return web.Response(status=400, text="not a JSON event")
        moment = event.get("time")
        if not isinstance(moment, int) or isinstance(moment, bool):
            return web.Response(status=400, text="no event time")
        if not self._fresh(moment):
            log.warning("refused OneBot event: time %s is too old or ahead", moment)
            return web.Response(status=403, text="stale event")
        if event.get("post_type") != "message":
            log.info(
                "OneBot %s event: %s",
                event.get("post_type"),
                event.get("meta_event_type")
                or event.get("notice_type")
                or event.get("request_type"),
            )
            return web.Response(status=204)
        try:
            inbound, in_group = self._inbound(event, request)
        except (KeyError, TypeError, ValueError) as problem:
            log.warning("unreadable OneBot message: %r", problem)
            return web.Response(status=400, text="unreadable message")
        if inbound is None:
            return web.Response(status=204)
        reply = await request.app[CONVERSATION].respond(inbound)
        if not reply:
            return web.Response(status=204)
        answer: dict[str, Any] = {"reply": reply}
        if in_group:
            answer["at_sender"] = True
        return web.json_response(answer, dumps=lambda v: json.dumps(v, ensure_ascii=False))

    def _fresh(self, moment: int) -> bool:
        now = unix_seconds(self.clock)
        return now - self.max_age <= moment <= now + self.ahead

    def _inbound(self, event: dict[str, Any], request: web.Request) -> tuple[Inbound | None, bool]:
        self_id = str(event.get("self_id") or request.headers.get("X-Self-ID", ""))
        user_id = str(event["user_id"])
        in_group = event.get("message_type") == "group"
        if user_id == self_id:
            return None, in_group  # our own message, echoed back by the implementation
        content = read(event.get("message", event.get("raw_message", "")))
        if in_group and self_id not in content.mentions:
            conversation = request.app[CONVERSATION]
            if not (self.group_commands and conversation.router.match(content.text)):
                return None, in_group  # group chatter not addressed to the bot
        media = content.media
        kind = InboundKind.TEXT if content.text else InboundKind.MEDIA
        if not content.text and not media:
            kind = InboundKind.UNSUPPORTED
        key = f"{self_id}:{event['message_id']}"
        inbound = Inbound(
            Sender(CHANNEL, user_id),
            key,
            kind,
            self.clock.now(),
            bounded_text(content.text),
            media=media,
        )
        return inbound, in_group
