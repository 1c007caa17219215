"""A test double of the official QQ Bot open platform's HTTP API.

It plays the platform's side of the calls the product makes (PROTOCOLS.md, "Official QQ Bot
API"):

- ``POST /app/getAppAccessToken`` ``{"appId", "clientSecret"}`` → ``{"access_token",
  "expires_in"}``, where ``expires_in`` is a STRING (seconds left), as on the real platform.
- ``POST /v2/users/{openid}/messages`` and ``POST /v2/groups/{group_openid}/messages`` with
  ``Authorization: QQBot <token>`` (HTTP 401 for a missing or unknown token). Only passive
  replies exist since 2025-04-21: a message without ``msg_id`` is refused, and so is a
  repeated (``msg_id``, ``msg_seq``) pair (HTTP 400, "消息被去重"), like the platform.

Every token call is in :attr:`FakeQQBot.token_calls`, every message request in
:attr:`FakeQQBot.received`, and the accepted replies in :attr:`FakeQQBot.replies`.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN_PATH = "/app/getAppAccessToken"
DUPLICATE = 40054005  # "消息被去重，请检查请求msgseq"
ACTIVE_REFUSED = 40034024  # no msg_id / event_id: an active message, no longer allowed


@dataclass
class Message:
    """A message request to the platform."""

    path: str
    kind: str  # "users" or "groups"
    target: str  # the user's or the group's openid
    authorization: str | None
    body: dict[str, Any]
    status: int = 200

    @property
    def content(self) -> str:
        return str(self.body.get("content", ""))

    @property
    def msg_id(self) -> str | None:
        value = self.body.get("msg_id")
        return None if value is None else str(value)

    @property
    def msg_seq(self) -> int:
        return int(self.body.get("msg_seq") or 1)  # the platform's default is 1


@dataclass
class FakeQQBot:
    appid: str
    secret: str
    expires_in: int = 7200  # what getAppAccessToken says is left of a new token

    token_calls: list[dict[str, Any]] = field(default_factory=list, init=False)
    tokens_issued: list[str] = field(default_factory=list, init=False)
    received: list[Message] = field(default_factory=list, init=False)
    replies: list[Message] = field(default_factory=list, init=False)

    _revoked: set[str] = field(default_factory=set, init=False, repr=False)
    _seen: set[tuple[str, int]] = field(default_factory=set, init=False, repr=False)
    _ids: itertools.count[int] = field(
        default_factory=lambda: itertools.count(1), init=False, repr=False
    )

    # ---- steering -------------------------------------------------------------------------

    def revoke_tokens(self) -> None:
        """Every token handed out so far stops working (HTTP 401 on messages)."""
        self._revoked.update(self.tokens_issued)

    # ---- inspection -----------------------------------------------------------------------

    def replies_to(self, kind: str, target: str) -> list[Message]:
        return [m for m in self.replies if m.kind == kind and m.target == target]

    # ---- the application ------------------------------------------------------------------

    def app(self) -> web.Application:
        application = web.Application()
        application.router.add_post(TOKEN_PATH, self._token)
        application.router.add_post("/v2/users/{target}/messages", self._message)
        application.router.add_post("/v2/groups/{target}/messages", self._message)
        return application

    async def _token(self, request: web.Request) -> web.Response:
        body = _object(await request.read())
        self.token_calls.append(body)
        if body.get("appId") != self.appid or body.get("clientSecret") != self.secret:
            return _json({"code": 100016, "message": "invalid appid or secret"}, status=401)
        token = f"fake-qq-token-{len(self.tokens_issued) + 1}"
        self.tokens_issued.append(token)
        return _json({"access_token": token, "expires_in": str(self.expires_in)})

    async def _message(self, request: web.Request) -> web.Response:
        kind = "users" if request.path.startswith("/v2/users/") else "groups"
        message = Message(
            path=request.path,
            kind=kind,
            target=request.match_info["target"],
            authorization=request.headers.get("Authorization"),
            body=_object(await request.read()),
        )
        self.received.append(message)
        header = message.authorization or ""
        token = header.removeprefix("QQBot ") if header.startswith("QQBot ") else ""
        if token not in self.tokens_issued or token in self._revoked:
            return self._refuse(message, 401, 11244, "token not exist or expire")
        if not message.content.strip() or message.body.get("msg_type", 0) != 0:
            return self._refuse(message, 400, 40034006, "content is empty or msg_type invalid")
        if message.msg_id is None and not message.body.get("event_id"):
            return self._refuse(message, 400, ACTIVE_REFUSED, "active messages are not allowed")
        key = (message.msg_id or "", message.msg_seq)
        if key in self._seen:
            return self._refuse(message, 400, DUPLICATE, "消息被去重，请检查请求msgseq")
        self._seen.add(key)
        self.replies.append(message)
        return _json(
            {"id": f"fake-msg-{next(self._ids)}", "timestamp": "2026-11-25T09:00:00+08:00"}
        )

    @staticmethod
    def _refuse(message: Message, status: int, code: int, text: str) -> web.Response:
        message.status = status
        return _json({"code": code, "err_code": code, "message": text}, status=status)


def _object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _json(value: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(
        value, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False)
    )
