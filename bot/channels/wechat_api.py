"""The few outbound WeChat API calls of the foundation, over aiohttp (wechatpy's is sync)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp


class WeChatApiError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeChat API error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


async def _post(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> dict[str, Any]:
    async with http.post(url, **kwargs) as response:
        response.raise_for_status()
        body: dict[str, Any] = await response.json(content_type=None)
    if body.get("errcode", 0) != 0:
        raise WeChatApiError(int(body["errcode"]), str(body.get("errmsg", "")))
    return body


async def stable_token(http: aiohttp.ClientSession, base: str, appid: str, secret: str) -> str:
    """An access token from the stable-token endpoint (does not invalidate the current one)."""
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
    return str(body["access_token"])


async def create_menu(
    http: aiohttp.ClientSession, base: str, token: str, menu: dict[str, Any]
) -> None:
    # Chinese must go unescaped: the platform shows \uXXXX escapes literally in menu names.
    await _post(
        http,
        f"{base}/cgi-bin/menu/create",
        params={"access_token": token},
        data=json.dumps(menu, ensure_ascii=False).encode("utf-8"),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
