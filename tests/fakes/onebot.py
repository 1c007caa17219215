"""A test double of a OneBot v11 implementation's HTTP API (NapCat and others).

It plays the implementation's side of the calls the product makes (PROTOCOLS.md, "QQ through
OneBot v11"):

- ``POST /send_private_msg`` ``{"user_id", "message"}``
- ``POST /send_group_msg`` ``{"group_id", "message"}``

Both need ``Authorization: Bearer <access_token>``. As in the OneBot v11 authorization rules,
a request without the header gets HTTP 401 and one with a wrong token HTTP 403. A good call
answers ``{"status": "ok", "retcode": 0, "data": {"message_id": n}}``; a failure queued with
:meth:`FakeOneBot.fail_next` answers ``{"status": "failed", "retcode": …, "wording": …}``
with HTTP 200, as the implementations do.

Every request is recorded in :attr:`FakeOneBot.received`; the messages actually sent are in
:attr:`FakeOneBot.sent`.

Usage with pytest-aiohttp::

    fake = FakeOneBot(access_token="tok")
    server = await aiohttp_server(fake.app())
    # point QIYI_ONEBOT_API_URL at str(server.make_url(""))
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

SEND_PRIVATE = "send_private_msg"
SEND_GROUP = "send_group_msg"
TARGET_FIELD = {SEND_PRIVATE: "user_id", SEND_GROUP: "group_id"}
BAD_PARAMS = 1400  # NapCat's retcode for missing or malformed parameters


@dataclass
class Received:
    """One request as it arrived."""

    action: str
    body: dict[str, Any]
    authorization: str | None
    status: int = 200  # the HTTP status answered
    retcode: int | None = None  # the retcode answered (None: refused at the HTTP level)


@dataclass
class Sent:
    """A message the fake accepted."""

    action: str
    target: int  # user_id or group_id
    message: Any  # a string or an array of segments, as posted
    message_id: int


@dataclass
class FakeOneBot:
    access_token: str | None = "tok"

    received: list[Received] = field(default_factory=list, init=False)
    sent: list[Sent] = field(default_factory=list, init=False)

    _failures: dict[str, deque[tuple[int, str]]] = field(
        default_factory=dict, init=False, repr=False
    )
    _message_ids: itertools.count[int] = field(
        default_factory=lambda: itertools.count(1001), init=False, repr=False
    )

    # ---- steering -------------------------------------------------------------------------

    def fail_next(self, action: str, retcode: int, wording: str = "", times: int = 1) -> None:
        """Answer the next ``times`` calls of ``action`` with ``{"status": "failed", "retcode":
        retcode, "wording": wording}`` (HTTP 200), after the token check passes."""
        self._failures.setdefault(action, deque()).extend([(retcode, wording)] * times)

    # ---- inspection -----------------------------------------------------------------------

    def calls(self, action: str) -> list[Received]:
        """The authorised requests to ``action``, in arrival order (failed ones included)."""
        return [r for r in self.received if r.action == action and r.status == 200]

    def private_messages(self, user_id: int | None = None) -> list[Sent]:
        return [
            s
            for s in self.sent
            if s.action == SEND_PRIVATE and (user_id is None or s.target == user_id)
        ]

    def group_messages(self, group_id: int | None = None) -> list[Sent]:
        return [
            s
            for s in self.sent
            if s.action == SEND_GROUP and (group_id is None or s.target == group_id)
        ]

    # ---- the application ------------------------------------------------------------------

    def app(self) -> web.Application:
        application = web.Application()
        application.router.add_post(f"/{SEND_PRIVATE}", self._send)
        application.router.add_post(f"/{SEND_GROUP}", self._send)
        return application

    async def _send(self, request: web.Request) -> web.Response:
        action = request.path.lstrip("/")
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        received = Received(action, body, request.headers.get("Authorization"))
        self.received.append(received)

        if self.access_token:
            header = received.authorization
            if not header:
                received.status = 401
                return web.Response(status=401, text="access token required")
            if header != f"Bearer {self.access_token}":
                received.status = 403
                return web.Response(status=403, text="access token mismatch")

        target = body.get(TARGET_FIELD[action])
        message = body.get("message")
        if not isinstance(target, int) or isinstance(target, bool) or not message:
            return self._answer(received, BAD_PARAMS, "参数错误")
        queue = self._failures.get(action)
        if queue:
            retcode, wording = queue.popleft()
            return self._answer(received, retcode, wording)
        message_id = next(self._message_ids)
        self.sent.append(Sent(action, target, message, message_id))
        received.retcode = 0
        return web.json_response(
            {"status": "ok", "retcode": 0, "data": {"message_id": message_id}},
            dumps=_dumps,
        )

    @staticmethod
    def _answer(received: Received, retcode: int, wording: str) -> web.Response:
        received.retcode = retcode
        return web.json_response(
            {"status": "failed", "retcode": retcode, "data": None, "wording": wording},
            dumps=_dumps,
        )


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
