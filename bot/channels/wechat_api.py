"""Outbound WeChat API calls over one aiohttp session (wechatpy's own client is synchronous).

The access token comes from the stable-token endpoint, is shared by every process through
the database, and is refreshed by one refresher at a time; an invalid-token answer leads to
one re-read or refresh and one retry, never more.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import aiohttp

from bot.channels.outbound import Answer, TransientError, json_body, post_json
from bot.channels.token_cache import TokenCache
from bot.clock import Clock
from data.db import Sessions

log = logging.getLogger(__name__)

__all__ = [
    "Answer",
    "TokenRefused",
    "TransientError",
    "WeChatApi",
    "WeChatApiError",
    "create_menu",
    "stable_token",
]

TOKEN_ERRORS = frozenset({40001, 40014, 42001})
# A 10 MB video over a slow uplink takes longer than the session's 10-second bound.
UPLOAD_TIMEOUT = aiohttp.ClientTimeout(total=300)


class WeChatApiError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeChat API error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class TokenRefused(WeChatApiError):
    """The token endpoint refused (40164 IP not whitelisted, 40013/40125 a wrong AppID or
    AppSecret …): every API call fails alike until the configuration is fixed."""


async def stable_token(
    http: aiohttp.ClientSession, base: str, appid: str, secret: str
) -> tuple[str, int]:
    """(token, seconds it lives) from the stable-token endpoint, which never invalidates
    the token other processes hold (unlike /cgi-bin/token)."""
    body = await post_json(
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
        raise TokenRefused(int(body["errcode"]), str(body.get("errmsg", "")))
    return str(body["access_token"]), int(body.get("expires_in", 7200))


async def create_menu(
    http: aiohttp.ClientSession, base: str, token: str, menu: dict[str, Any]
) -> None:
    body = await post_json(
        http, f"{base}/cgi-bin/menu/create", params={"access_token": token}, **json_body(menu)
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
        self.base = base
        self.tokens = TokenCache(
            sessions, clock, appid, lambda: stable_token(http, base, appid, secret)
        )

    async def token(self) -> str:
        return await self.tokens.get()

    async def _call(self, path: str, payload: dict[str, Any]) -> Answer:
        token = await self.token()
        for attempt in range(2):
            body = await post_json(
                self.http,
                f"{self.base}{path}",
                params={"access_token": token},
                **json_body(payload),
            )
            answer = Answer(int(body.get("errcode", 0)), str(body.get("errmsg", "")))
            if answer.errcode not in TOKEN_ERRORS or attempt:
                return answer
            token = await self.tokens.refresh(stale=token)
        return answer

    async def send_text(self, openid: str, content: str) -> Answer:
        """A customer-service text message (only inside the member's 48-hour window)."""
        payload = {"touser": openid, "msgtype": "text", "text": {"content": content}}
        return await self._call("/cgi-bin/message/custom/send", payload)

    async def upload_image(self, path: str) -> str:
        """A temporary media id (3 days) for a PNG, to send it as a picture."""
        return await self._upload(Path(path), "image", "chart.png", "image/png")

    async def upload_video(self, path: Path) -> str:
        """A temporary media id (3 days) for an MP4 (WeChat takes up to 10 MB), streamed
        from the file, to send it as a video message."""
        return await self._upload(path, "video", "video.mp4", "video/mp4", UPLOAD_TIMEOUT)

    async def _upload(
        self,
        path: Path,
        media_type: str,
        filename: str,
        content_type: str,
        limit: aiohttp.ClientTimeout | None = None,
    ) -> str:
        """`/cgi-bin/media/upload` of the file at `path` (read as it is sent), under a name
        of our own; WeChatApiError when the platform refuses it."""
        token = await self.token()
        extra = {"timeout": limit} if limit else {}
        for attempt in range(2):
            with path.open("rb") as file:
                form = aiohttp.FormData()
                form.add_field("media", file, filename=filename, content_type=content_type)
                body = await post_json(
                    self.http,
                    f"{self.base}/cgi-bin/media/upload",
                    params={"access_token": token, "type": media_type},
                    data=form,
                    **extra,
                )
            errcode = int(body.get("errcode", 0))
            if errcode in TOKEN_ERRORS and not attempt:
                token = await self.tokens.refresh(stale=token)
                continue
            if errcode or "media_id" not in body:
                raise WeChatApiError(errcode, str(body.get("errmsg", "")))
            return str(body["media_id"])
        raise WeChatApiError(errcode, "token refused twice")

    async def send_news(
        self, openid: str, title: str, description: str, url: str, picurl: str
    ) -> Answer:
        """A customer-service 图文 message of one article: a card with the picture at
        `picurl` that opens `url` (counts against the member's budget like a text)."""
        article = {"title": title, "description": description, "url": url, "picurl": picurl}
        payload = {"touser": openid, "msgtype": "news", "news": {"articles": [article]}}
        return await self._call("/cgi-bin/message/custom/send", payload)

    async def send_video(self, openid: str, media_id: str, title: str, description: str) -> Answer:
        """A customer-service video message of an uploaded video."""
        video = {"media_id": media_id, "title": title, "description": description}
        payload = {"touser": openid, "msgtype": "video", "video": video}
        return await self._call("/cgi-bin/message/custom/send", payload)

    async def send_image(self, openid: str, media_id: str) -> Answer:
        """A customer-service picture message (counts against the member's budget)."""
        payload = {"touser": openid, "msgtype": "image", "image": {"media_id": media_id}}
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
