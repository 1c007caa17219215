"""Downloading a material's file from where the platform keeps it: WeChat's temporary media
(`/cgi-bin/media/get`, and the `video_url` it answers for a video) and QQ's pictures and
files by URL. The body is handed on as a stream; nothing here decides what is kept."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from yarl import URL

from bot.channels import public_web
from bot.channels.outbound import TransientError
from bot.channels.wechat_api import TOKEN_ERRORS, WeChatApi, WeChatApiError

CHUNK_BYTES = 64 * 1024
MAX_REDIRECTS = 3
MAX_ERROR_BYTES = 64 * 1024  # a JSON error answer is small; a larger one is not read
NAME_LIMIT = 200
SCHEMES = frozenset({"http", "https"})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Not worth another try: the file is gone or was never there.
GONE = frozenset({400, 401, 403, 404, 410})


class Unavailable(Exception):
    """The file cannot be had from this address (a bad URL, gone, refused): no retry."""


@dataclass(frozen=True)
class Download:
    """An answer whose body is the file: its declared type, length and name, and the body."""

    content_type: str
    length: int | None
    name: str
    chunks: AsyncIterator[bytes]


def display_name(raw: str | None) -> str:
    """A file name fit for display only: its last path part, no control characters,
    bounded. It never becomes a path."""
    last = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    shown = "".join(c for c in last if unicodedata.category(c)[0] != "C").strip()
    return shown[:NAME_LIMIT]


def _body(response: aiohttp.ClientResponse, fallback_name: str = "") -> Download:
    disposition = response.content_disposition
    name = disposition.filename if disposition is not None else None
    return Download(
        response.headers.get("Content-Type", ""),
        response.content_length,
        display_name(name or fallback_name),
        response.content.iter_chunked(CHUNK_BYTES),
    )


def _check_status(response: aiohttp.ClientResponse) -> None:
    if response.status >= 500 or response.status == 429:
        raise TransientError(f"HTTP {response.status}")
    if response.status in GONE:
        raise Unavailable(f"HTTP {response.status}")
    if response.status != 200:
        raise TransientError(f"HTTP {response.status}")


def web_address(url: str) -> URL:
    """`url` when it is an absolute http(s) address; Unavailable otherwise."""
    try:
        parsed = URL(url)
    except ValueError:
        raise Unavailable("not a URL") from None
    if parsed.scheme not in SCHEMES or not parsed.host:
        raise Unavailable("not an http(s) URL")
    return parsed


@asynccontextmanager
async def by_url(
    http: aiohttp.ClientSession,
    url: str,
    limits: aiohttp.ClientTimeout,
    public_only: bool = False,
) -> AsyncIterator[Download]:
    """The file at an http(s) URL, following at most `MAX_REDIRECTS` redirects, each to an
    http(s) address. `public_only`: every hop's host must be a public address — an IP literal
    is checked here, a name by `http`'s resolver (`public_web.fetching_session`)."""
    address = web_address(url)
    for _ in range(MAX_REDIRECTS + 1):
        try:
            if public_only:
                public_web.check_literal(address)
            async with http.get(address, allow_redirects=False, timeout=limits) as response:
                if response.status in REDIRECTS:
                    location = response.headers.get("Location", "")
                    address = web_address(str(address.join(URL(location))))
                    continue
                _check_status(response)
                yield _body(response, address.path)
                return
        except public_web.PrivateAddress as refused:
            raise Unavailable(str(refused)) from None
        except aiohttp.ClientConnectorError as failed:
            if isinstance(failed.os_error, public_web.PrivateAddress):
                raise Unavailable(str(failed.os_error)) from None
            raise
    raise Unavailable(f"more than {MAX_REDIRECTS} redirects")


async def _small_json(response: aiohttp.ClientResponse) -> dict[str, object]:
    raw = await response.content.read(MAX_ERROR_BYTES + 1)
    if len(raw) > MAX_ERROR_BYTES:
        raise Unavailable("a JSON answer too large to be an error")
    try:
        body = json.loads(raw)
    except ValueError:
        raise TransientError("not JSON") from None
    if not isinstance(body, dict):
        raise TransientError("not a JSON object")
    return body


def _is_json(response: aiohttp.ClientResponse) -> bool:
    return response.content_type in ("application/json", "text/plain", "text/json")


@asynccontextmanager
async def wechat_media(
    api: WeChatApi, media_id: str, limits: aiohttp.ClientTimeout
) -> AsyncIterator[Download]:
    """A member's temporary media (3 days) by its id. A video comes back as `video_url`,
    fetched next; an error as JSON (40007: the id is invalid or expired)."""
    token = await api.token()
    video_url = ""
    for attempt in range(2):
        async with api.http.get(
            f"{api.base}/cgi-bin/media/get",
            params={"access_token": token, "media_id": media_id},
            allow_redirects=False,
            timeout=limits,
        ) as response:
            _check_status(response)
            if not _is_json(response):
                yield _body(response)
                return
            body = await _small_json(response)
        if isinstance(body.get("video_url"), str):
            video_url = str(body["video_url"])
            break
        errcode = int(str(body.get("errcode", -1)))
        if errcode in TOKEN_ERRORS and not attempt:
            token = await api.tokens.refresh(stale=token)
            continue
        raise WeChatApiError(errcode, str(body.get("errmsg", ""))[:200])
    if not video_url:
        raise WeChatApiError(40001, "token refused twice")
    async with by_url(api.http, video_url, limits) as download:
        yield download
