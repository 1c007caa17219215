"""A test double of the WeCom (企业微信) server API (``https://qyapi.weixin.qq.com``), served
on loopback, with WeCom's answers (PROTOCOLS.md, "WeCom — self-built app"):

- ``GET /cgi-bin/gettoken?corpid&corpsecret``: a new token each call, valid ``token_lifetime``
  seconds; a wrong CorpID is 40013, a wrong Secret 40001.
- ``POST /cgi-bin/message/send?access_token``: text, textcard, markdown and news messages
  from the app ``agentid``; recipients outside the app's visible range come back in
  ``invaliduser`` (81013 when no recipient is left); with ``enable_duplicate_check`` the
  same content to the same member within the interval is accepted but not shown again.
- ``POST /cgi-bin/menu/create?access_token&agentid``: the app's menu.

A revoked token answers 40014, an expired one 42001. Tests steer the fake with
:meth:`FakeWeCom.expire_token`, :meth:`FakeWeCom.revoke_token`, :meth:`FakeWeCom.fail_next`
(an errcode such as ``-1``, busy), :meth:`FakeWeCom.fail_http` (a 5xx from a gateway) and
:meth:`FakeWeCom.out_of_range`. Every request is kept in :attr:`FakeWeCom.received`.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

GETTOKEN = "/cgi-bin/gettoken"
MESSAGE_SEND = "/cgi-bin/message/send"
MENU_CREATE = "/cgi-bin/menu/create"
MESSAGE_TYPES = frozenset({"text", "textcard", "markdown", "news"})
MAX_RECIPIENTS = 1000

ERRMSGS = {
    -1: "system busy",
    40001: "invalid secret",
    40013: "invalid corpid",
    40014: "invalid access_token",
    42001: "access_token expired",
    40008: "invalid message type",
    40056: "invalid agentid",
    81013: "user & party & tag all invalid",
}


@dataclass
class Received:
    path: str
    query: dict[str, str]
    body: dict[str, Any]
    method: str


@dataclass
class Shown:
    """A message a member was shown."""

    user: str
    msgtype: str
    content: dict[str, Any]


@dataclass
class FakeWeCom:
    corp_id: str = "ww-test-corp"
    secret: str = "app-secret"
    agent_id: int = 1000002
    token_lifetime: int = 7200
    clock: Callable[[], float] = time.monotonic

    received: list[Received] = field(default_factory=list, init=False)
    tokens_issued: list[str] = field(default_factory=list, init=False)
    shown: list[Shown] = field(default_factory=list, init=False)
    menus: list[dict[str, Any]] = field(default_factory=list, init=False)

    _valid_until: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    _revoked: set[str] = field(default_factory=set, init=False, repr=False)
    _failures: dict[str, deque[int]] = field(default_factory=dict, init=False, repr=False)
    _http_failures: dict[str, deque[int]] = field(default_factory=dict, init=False, repr=False)
    _out_of_range: set[str] = field(default_factory=set, init=False, repr=False)
    _last_shown: dict[tuple[str, str], float] = field(default_factory=dict, init=False, repr=False)
    _serial: itertools.count[int] = field(default_factory=itertools.count, init=False, repr=False)

    # ---- steering -------------------------------------------------------------------------

    def expire_token(self) -> None:
        """Every token issued so far has expired (42001)."""
        for token in self._valid_until:
            self._valid_until[token] = float("-inf")

    def revoke_token(self) -> None:
        """Every token issued so far is invalid (40014), as when WeCom invalidates early."""
        self._revoked.update(self._valid_until)

    def fail_next(self, path: str, errcode: int, times: int = 1) -> None:
        """The next ``times`` calls to ``path`` answer ``errcode`` (HTTP 200)."""
        self._failures.setdefault(path, deque()).extend([errcode] * times)

    def fail_http(self, path: str, status: int, times: int = 1) -> None:
        """The next ``times`` calls to ``path`` answer HTTP ``status`` with a gateway's page."""
        self._http_failures.setdefault(path, deque()).extend([status] * times)

    def out_of_range(self, user: str) -> None:
        """``user`` is outside the app's visible range."""
        self._out_of_range.add(user)

    def calls(self, path: str) -> list[Received]:
        return [received for received in self.received if received.path == path]

    # ---- the server ------------------------------------------------------------------------

    def app(self) -> web.Application:
        application = web.Application(middlewares=[self._record])
        application.router.add_get(GETTOKEN, self._gettoken)
        application.router.add_post(MESSAGE_SEND, self._message_send)
        application.router.add_post(MENU_CREATE, self._menu_create)
        return application

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw.decode("utf-8")) if raw else {}
        except ValueError:
            body = {}
        self.received.append(
            Received(
                request.path,
                dict(request.query),
                body if isinstance(body, dict) else {},
                request.method,
            )
        )
        failing = self._http_failures.get(request.path)
        if failing:
            return web.Response(status=failing.popleft(), text="<html>bad gateway</html>")
        return await handler(request)

    @staticmethod
    def _error(errcode: int) -> web.Response:
        return web.json_response({"errcode": errcode, "errmsg": ERRMSGS.get(errcode, "error")})

    def _token_problem(self, request: web.Request) -> int:
        token = request.query.get("access_token", "")
        if token not in self._valid_until or token in self._revoked:
            return 40014
        if self._valid_until[token] <= self.clock():
            return 42001
        return 0

    def _queued_failure(self, path: str) -> int:
        queue = self._failures.get(path)
        return queue.popleft() if queue else 0

    async def _gettoken(self, request: web.Request) -> web.Response:
        if request.query.get("corpid") != self.corp_id:
            return self._error(40013)
        if request.query.get("corpsecret") != self.secret:
            return self._error(40001)
        if failure := self._queued_failure(GETTOKEN):
            return self._error(failure)
        token = f"wecom-token-{next(self._serial)}"
        self.tokens_issued.append(token)
        self._valid_until[token] = self.clock() + self.token_lifetime
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.token_lifetime}
        )

    async def _message_send(self, request: web.Request) -> web.Response:
        if problem := self._token_problem(request):
            return self._error(problem)
        if failure := self._queued_failure(MESSAGE_SEND):
            return self._error(failure)
        body = self.received[-1].body
        if body.get("agentid") != self.agent_id:
            return self._error(40056)
        msgtype = body.get("msgtype")
        if msgtype not in MESSAGE_TYPES or not isinstance(body.get(msgtype), dict):
            return self._error(40008)
        users = [user for user in str(body.get("touser", "")).split("|") if user][:MAX_RECIPIENTS]
        invalid = [user for user in users if user in self._out_of_range]
        reached = [user for user in users if user not in self._out_of_range]
        for user in reached:
            self._show(user, msgtype, body)
        answer: dict[str, Any] = {
            "errcode": 0,
            "errmsg": "ok",
            "msgid": f"msg-{next(self._serial)}",
        }
        if invalid:
            answer["invaliduser"] = "|".join(invalid)
        if not reached:
            answer.update(errcode=81013, errmsg=ERRMSGS[81013])
        return web.json_response(answer)

    def _show(self, user: str, msgtype: str, body: dict[str, Any]) -> None:
        content = body[msgtype]
        key = (user, json.dumps([msgtype, content], sort_keys=True, ensure_ascii=False))
        now = self.clock()
        last = self._last_shown.get(key)
        interval = float(body.get("duplicate_check_interval", 1800))
        if body.get("enable_duplicate_check") == 1 and last is not None and now - last < interval:
            return
        self._last_shown[key] = now
        self.shown.append(Shown(user, msgtype, content))

    async def _menu_create(self, request: web.Request) -> web.Response:
        if problem := self._token_problem(request):
            return self._error(problem)
        if failure := self._queued_failure(MENU_CREATE):
            return self._error(failure)
        if request.query.get("agentid") != str(self.agent_id):
            return self._error(40056)
        body = self.received[-1].body
        if not isinstance(body.get("button"), list) or not body["button"]:
            return self._error(40008)
        self.menus.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})
