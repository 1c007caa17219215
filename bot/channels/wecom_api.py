"""Outbound WeCom (企业微信) API calls as the self-built app: `message/send` and `menu/create`.

The app's token comes from `gettoken` (CorpID + the app's Secret, 7200 s), is shared by every
process through the database like WeChat's, and an invalid-token answer (40014, 42001) leads
to one refresh and one retry, never more. App messages have no 48-hour window; WeCom drops
what exceeds 30 a minute or 1,000 an hour per member without an error, so pacing is the
sender's job (the dispatcher's), not this client's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.channels.outbound import Answer, TransientError, json_body, post_json, request_json
from bot.channels.token_cache import TokenCache
from bot.clock import Clock
from data.db import Sessions

log = logging.getLogger(__name__)

__all__ = [
    "SendAnswer",
    "TokenRefused",
    "TransientError",
    "WeComApi",
    "WeComApiError",
    "create_menu",
    "get_token",
]

# On WeCom 40001 is a wrong Secret, not a stale token: only these two are refreshed.
TOKEN_ERRORS = frozenset({40014, 42001})
OUT_OF_RANGE = 81013  # every recipient is outside the app's visible range
# WeCom does not show the same message to the same member twice within this many seconds
# (its maximum, 4 hours): a send retried after a lost answer is not shown twice. The
# dispatcher passes a shorter interval of its own, reaching back to the outbox row's creation
# (bot/wecom_rung.py), so an earlier push with the same text is never taken for a repeat.
DUPLICATE_CHECK_SECONDS = 4 * 3600


class WeComApiError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeCom API error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class TokenRefused(WeComApiError):
    """`gettoken` refused (40013 a wrong CorpID, 40001 a wrong Secret, 60020 an IP not
    trusted …): every call fails alike until the configuration is fixed."""


@dataclass(frozen=True)
class SendAnswer(Answer):
    """`message/send`'s answer; `invalid_users` are recipients WeCom would not deliver to
    (outside the app's visible range, unknown), reported with errcode 0 when others got it."""

    invalid_users: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.errcode == 0 and not self.invalid_users

    @property
    def out_of_range(self) -> bool:
        """The recipient cannot be reached through the app: no retry will help."""
        return self.errcode == OUT_OF_RANGE or bool(self.invalid_users)


async def get_token(
    http: aiohttp.ClientSession, base: str, corp_id: str, secret: str
) -> tuple[str, int]:
    """(token, seconds it lives) for the app whose Secret this is."""
    body = await request_json(
        http, "GET", f"{base}/cgi-bin/gettoken", params={"corpid": corp_id, "corpsecret": secret}
    )
    if body.get("errcode", 0) != 0 or "access_token" not in body:
        raise TokenRefused(int(body.get("errcode", -1)), str(body.get("errmsg", "")))
    return str(body["access_token"]), int(body.get("expires_in", 7200))


async def create_menu(
    http: aiohttp.ClientSession, base: str, token: str, agent_id: int, menu: dict[str, Any]
) -> None:
    """Install the app's menu; WeCom reads the shape of `wechat_menu.platform_json`."""
    params = {"access_token": token, "agentid": str(agent_id)}
    body = await post_json(http, f"{base}/cgi-bin/menu/create", params=params, **json_body(menu))
    if int(body.get("errcode", 0)) != 0:
        raise WeComApiError(int(body["errcode"]), str(body.get("errmsg", "")))


def _invalid_users(body: dict[str, Any]) -> tuple[str, ...]:
    return tuple(user for user in str(body.get("invaliduser") or "").split("|") if user)


class WeComApi:
    """Sends as the app, with its token cached for every process through the database."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        sessions: Sessions,
        clock: Clock,
        *,
        base: str,
        corp_id: str,
        agent_id: int,
        secret: str,
    ) -> None:
        self.http = http
        self.base = base
        self.agent_id = agent_id
        # A token belongs to one app of the corp: keyed by both.
        self.tokens = TokenCache(
            sessions,
            clock,
            f"wecom:{corp_id}:{agent_id}",
            lambda: get_token(http, base, corp_id, secret),
        )

    async def _call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        token = await self.tokens.get()
        for attempt in range(2):
            query = {"access_token": token}
            body = await post_json(
                self.http, f"{self.base}{path}", params=query, **json_body(payload)
            )
            if int(body.get("errcode", 0)) not in TOKEN_ERRORS or attempt:
                break
            token = await self.tokens.refresh(stale=token)
        return body

    async def _send(
        self, user_id: str, msgtype: str, content: dict[str, Any], dedupe_seconds: int
    ) -> SendAnswer:
        payload = {
            "touser": user_id,
            "msgtype": msgtype,
            "agentid": self.agent_id,
            msgtype: content,
            "enable_duplicate_check": 1,
            "duplicate_check_interval": max(1, min(dedupe_seconds, DUPLICATE_CHECK_SECONDS)),
        }
        body = await self._call("/cgi-bin/message/send", payload)
        errcode, errmsg = int(body.get("errcode", 0)), str(body.get("errmsg", ""))
        return SendAnswer(errcode, errmsg, _invalid_users(body))

    async def send_text(
        self, user_id: str, content: str, *, dedupe_seconds: int = DUPLICATE_CHECK_SECONDS
    ) -> SendAnswer:
        return await self._send(user_id, "text", {"content": content}, dedupe_seconds)

    async def send_textcard(
        self,
        user_id: str,
        title: str,
        description: str,
        url: str,
        button: str = "详情",
        *,
        dedupe_seconds: int = DUPLICATE_CHECK_SECONDS,
    ) -> SendAnswer:
        """A card with a link (lessons, news): title, a short description, the button."""
        card = {"title": title, "description": description, "url": url, "btntxt": button}
        return await self._send(user_id, "textcard", card, dedupe_seconds)

    async def send_markdown(
        self, user_id: str, content: str, *, dedupe_seconds: int = DUPLICATE_CHECK_SECONDS
    ) -> SendAnswer:
        return await self._send(user_id, "markdown", {"content": content}, dedupe_seconds)
