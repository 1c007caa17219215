"""Outbound WeChat API calls over one aiohttp session (wechatpy's own client is synchronous).

The access token comes from the stable-token endpoint, is shared by every process through
the database, and is refreshed by one refresher at a time; an invalid-token answer leads to
one re-read or refresh and one retry, never more.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.clock import Clock
from data import tokens
from data.db import Sessions, transaction

log = logging.getLogger(__name__)

TOKEN_ERRORS = frozenset({40001, 40014, 42001})
REFRESH_MARGIN = dt.timedelta(minutes=5)


class WeChatApiError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeChat API error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class TransientError(Exception):
    """The platform did not answer usefully (network, timeout, HTTP 5xx): try again later."""


@dataclass(frozen=True)
class Answer:
    errcode: int
    errmsg: str

    @property
    def ok(self) -> bool:
        return self.errcode == 0


async def _post(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> dict[str, Any]:
    try:
        async with http.post(url, **kwargs) as response:
            if response.status >= 500:
                raise TransientError(f"HTTP {response.status}")
            response.raise_for_status()
            body: dict[str, Any] = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TransientError(f"{type(exc).__name__}: {exc}") from None
    return body


def _json(payload: dict[str, Any]) -> dict[str, Any]:
    # Chinese goes unescaped: the platform shows \uXXXX escapes literally in some places.
    return {
        "data": json.dumps(payload, ensure_ascii=False).encode("utf-8"),
        "headers": {"Content-Type": "application/json; charset=utf-8"},
    }


async def stable_token(
    http: aiohttp.ClientSession, base: str, appid: str, secret: str
) -> tuple[str, int]:
    """(token, seconds it lives) from the stable-token endpoint, which never invalidates
    the token other processes hold (unlike /cgi-bin/token)."""
    body = await _post(
        http,
        f"{base}/cgi-bin/stable_token",
        json={
            "grant_type": "client_credential",
            "appid": appid,
            "secret": secret,
            "force_refresh": False,
        },
    )
    if body.get("errcode", 0) != 0:
        raise WeChatApiError(int(body["errcode"]), str(body.get("errmsg", "")))
    return str(body["access_token"]), int(body.get("expires_in", 7200))


async def create_menu(
    http: aiohttp.ClientSession, base: str, token: str, menu: dict[str, Any]
) -> None:
    body = await _post(
        http, f"{base}/cgi-bin/menu/create", params={"access_token": token}, **_json(menu)
    )
    if body.get("errcode", 0) != 0:
        raise WeChatApiError(int(body["errcode"]), str(body.get("errmsg", "")))


class WeChatApi:
    """Sends as the Official Account, with the token cache shared through the database."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        sessions: Sessions,
        clock: Clock,
        *,
        base: str,
        appid: str,
        secret: str,
    ) -> None:
        self.http = http
        self.sessions = sessions
        self.clock = clock
        self.base = base
        self.appid = appid
        self.secret = secret
        self._token: str | None = None
        self._expires_at = clock.now()
        self._refreshing = asyncio.Lock()

    def _fresh(self, expires_at: dt.datetime) -> bool:
        return expires_at - REFRESH_MARGIN > self.clock.now()

    async def token(self) -> str:
        if self._token and self._fresh(self._expires_at):
            return self._token
        return await self._refresh(stale=None)

    async def _refresh(self, stale: str | None) -> str:
        """Single flight: one refresher per process (the lock) and, on PostgreSQL, one across
        processes (the token row stays locked while it is fetched). SQLite serves one process
        only, and its lock would stall every write for the length of an HTTP call."""
        async with self._refreshing:
            if self._token and self._token != stale and self._fresh(self._expires_at):
                return self._token
            async with transaction(self.sessions) as session:
                row = await tokens.lock(session, self.appid, self.clock.now())
                usable = row.token and row.token != stale and self._fresh(row.expires_at)
                current = (row.token, row.expires_at) if usable else None
                if current is None and session.get_bind().dialect.name == "postgresql":
                    current = await self._fetch()
                    row.token, row.expires_at = current
                    row.fetched_at = self.clock.now()
                    session.add(row)
            if current is None:
                current = await self._fetch()
                async with transaction(self.sessions) as session:
                    await tokens.store(session, self.appid, *current, self.clock.now())
            self._token, self._expires_at = current
            return current[0]

    async def _fetch(self) -> tuple[str, dt.datetime]:
        token, lifetime = await stable_token(self.http, self.base, self.appid, self.secret)
        log.info("access token refreshed", extra={"appid": self.appid})
        return token, self.clock.now() + dt.timedelta(seconds=lifetime)

    async def _call(self, path: str, payload: dict[str, Any]) -> Answer:
        token = await self.token()
        for attempt in range(2):
            body = await _post(
                self.http, f"{self.base}{path}", params={"access_token": token}, **_json(payload)
            )
            answer = Answer(int(body.get("errcode", 0)), str(body.get("errmsg", "")))
            if answer.errcode not in TOKEN_ERRORS or attempt:
                return answer
            token = await self._refresh(stale=token)
        return answer

    async def send_text(self, openid: str, content: str) -> Answer:
        """A customer-service text message (only inside the member's 48-hour window)."""
        payload = {"touser": openid, "msgtype": "text", "text": {"content": content}}
        return await self._call("/cgi-bin/message/custom/send", payload)

    async def send_template(
        self, openid: str, template_id: str, data: dict[str, str], client_msg_id: str
    ) -> Answer:
        """A template message; `client_msg_id` makes a repeated send a no-op on the platform."""
        payload = {
            "touser": openid,
            "template_id": template_id,
            "client_msg_id": client_msg_id,
            "data": {key: {"value": value} for key, value in data.items()},
        }
        return await self._call("/cgi-bin/message/template/send", payload)
