"""A test double of the WeChat Official Account outbound API (``https://api.weixin.qq.com``).

It plays the platform's side of the calls the product makes, with the platform's answers
(see PROTOCOLS.md, "WeChat Official Account — outbound API"):

- ``POST /cgi-bin/stable_token``: the stable access token. With ``force_refresh`` false it
  hands out the same token while that token is valid; otherwise it issues a new one. A token
  that is superseded stays valid for a short grace period, like on the real platform.
- ``POST /cgi-bin/message/custom/send``: customer-service text, image, video (an uploaded
  video's ``media_id`` with a title and description) and news messages (one article:
  ``title``, ``description``, ``url``, ``picurl``; more than one is 45008, as the platform
  allows one since 2018).
- ``POST /cgi-bin/message/template/send``: template messages, idempotent on ``client_msg_id``.
- ``POST /cgi-bin/media/upload``: multipart media upload.
- ``POST /cgi-bin/menu/create``: the custom menu.
- ``GET /cgi-bin/media/get``: a temporary media's file (uploaded, or put by
  :meth:`FakeWeChat.add_media`), with its ``Content-Type`` and ``Content-disposition``; a
  video answers ``{"video_url"}``, served at ``/fake-video/{media_id}``. Faults:
  :meth:`FakeWeChat.fail_next` (40007, -1 …), :meth:`FakeWeChat.stall_next` (no answer
  until the client gives up), and media whose body is too large or not what its type says
  (:meth:`FakeWeChat.add_media` takes any bytes and type).

``GET /cgi-bin/token`` is deliberately absent (404): the product must use the stable token.

Every request is recorded in :attr:`FakeWeChat.received`, in arrival order, including token
calls and requests to unknown paths. Tests steer the fake with :meth:`FakeWeChat.expire_token`,
:meth:`FakeWeChat.fail_next`, :meth:`FakeWeChat.fail_http` and
:meth:`FakeWeChat.not_following`.

Usage with pytest-aiohttp::

    fake = FakeWeChat()
    client = await aiohttp_client(fake.app())
    # point the product's API base URL at str(client.make_url(""))
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

STABLE_TOKEN = "/cgi-bin/stable_token"
CUSTOM_SEND = "/cgi-bin/message/custom/send"
TEMPLATE_SEND = "/cgi-bin/message/template/send"
MEDIA_UPLOAD = "/cgi-bin/media/upload"
MENU_CREATE = "/cgi-bin/menu/create"
MEDIA_GET = "/cgi-bin/media/get"
VIDEO_DOWNLOAD = "/fake-video/{media_id}"

TEXT_LIMIT_BYTES = 2048  # a customer-service text's content, in UTF-8 bytes
IMAGE_LIMIT_BYTES = 10 * 1024 * 1024
VIDEO_LIMIT_BYTES = 10 * 1024 * 1024  # temporary video media
NEWS_ARTICLES = 1  # articles in a customer-service news message
MEDIA_TYPES = frozenset({"image", "voice", "video", "thumb"})
MAX_TOP_BUTTONS = 3
CREATED_AT_BASE = 1_764_000_000  # a fixed epoch for media ``created_at`` (no wall clock)

# The platform's messages for the codes this fake can produce (used when none is given).
ERRMSGS: dict[int, str] = {
    -1: "system error",
    0: "ok",
    40001: "invalid credential",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40004: "invalid media type",
    40005: "invalid file type",
    40006: "invalid meida size",
    40007: "invalid media_id",
    40008: "invalid message type",
    40009: "invalid image size",
    40013: "invalid appid",
    40014: "invalid access_token",
    40016: "invalid button size",
    40037: "invalid template_id",
    40125: "invalid appsecret",
    40164: "invalid ip, not in whitelist",
    41005: "media data missing",
    42001: "access_token expired",
    43004: "require subscribe",
    43101: "user refuse to accept the msg",
    44002: "empty post data",
    45002: "content size out of limit",
    45008: "article size out of limit",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit, mustslower retry next minute",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    47001: "data format error",
    47003: "argument invalid!",
    48001: "api unauthorized",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Received:
    """One request as the fake received it.

    ``body`` is the parsed JSON object (``{}`` when the body is empty or not a JSON object);
    for a multipart upload it describes the parts (``{"media": {"filename", "content_type",
    "size"}}``). ``raw`` is the body text (empty for multipart uploads).
    """

    path: str
    query: dict[str, str]
    body: dict[str, Any]
    raw: str = ""
    method: str = "POST"


_RECEIVED_KEY = web.RequestKey("fake_wechat_received", Received)


@dataclass
class Upload:
    """A successful media upload."""

    media_id: str
    type: str
    filename: str | None
    content_type: str | None
    data: bytes
    created_at: int


@dataclass
class StoredMedia:
    """A temporary media the fake serves: its body made on demand (``chunks``), so a large
    one is never held whole; ``size`` is sent as Content-Length unless None (chunked)."""

    chunks: Callable[[], Iterable[bytes]]
    content_type: str
    filename: str
    size: int | None
    video: bool = False


@dataclass
class _Token:
    value: str
    issued_at: float
    valid_until: float  # monotonic deadline; lowered when superseded or expired
    revoked: bool = False


@dataclass
class FakeWeChat:
    """The fake platform's state; :meth:`app` serves it.

    ``clock`` is the monotonic clock used for token lifetimes (``time.monotonic`` unless a
    test injects its own). ``rotate_before`` mirrors the stable token's early rotation: with
    ``force_refresh`` false, a token with no more than that many seconds left is replaced by
    a new one (ignored when ``token_lifetime`` is not longer than it). ``grace`` is how long a
    superseded token keeps working.
    """

    appid: str = "wx-test"
    secret: str = "secret"
    token_lifetime: int = 7200
    delay: float = 0.0
    rotate_before: float = 300.0
    grace: float = 300.0
    clock: Callable[[], float] = time.monotonic

    received: list[Received] = field(default_factory=list, init=False)
    tokens_issued: list[str] = field(default_factory=list, init=False)
    current_token: str | None = field(default=None, init=False)
    custom_sent: list[dict[str, Any]] = field(default_factory=list, init=False)
    templates_sent: list[dict[str, Any]] = field(default_factory=list, init=False)
    uploads: list[Upload] = field(default_factory=list, init=False)
    menus: list[str] = field(default_factory=list, init=False)
    media: dict[str, StoredMedia] = field(default_factory=dict, init=False)

    _tokens: dict[str, _Token] = field(default_factory=dict, init=False, repr=False)
    _failures: dict[str, deque[tuple[int, str]]] = field(
        default_factory=dict, init=False, repr=False
    )
    _http_failures: dict[str, deque[int]] = field(default_factory=dict, init=False, repr=False)
    _not_following: set[str] = field(default_factory=set, init=False, repr=False)
    _stalls: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _client_msg_ids: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _msgids: itertools.count[int] = field(
        default_factory=lambda: itertools.count(2_000_000_001), init=False, repr=False
    )

    # ---- steering -------------------------------------------------------------------------

    def expire_token(self, token: str | None = None) -> None:
        """Invalidate ``token`` (default: the current one): API calls with it get 40001, and
        the next stable_token call issues a new token even without ``force_refresh``."""
        value = token if token is not None else self.current_token
        if value is None or value not in self._tokens:
            return
        self._tokens[value].revoked = True

    def expire_all_tokens(self) -> None:
        """Invalidate every token handed out so far (including superseded ones in grace)."""
        for record in self._tokens.values():
            record.revoked = True

    def fail_next(self, path: str, errcode: int, times: int = 1, errmsg: str = "") -> None:
        """Answer the next ``times`` calls to ``path`` with ``errcode`` (HTTP 200).

        Queued codes are used in the order queued, after the token and body checks pass.
        ``-1`` is the platform's "system busy".
        """
        message = errmsg or ERRMSGS.get(errcode, "error")
        queue = self._failures.setdefault(path, deque())
        queue.extend([(errcode, message)] * times)

    def fail_http(self, path: str, status: int, times: int = 1) -> None:
        """Answer the next ``times`` calls to ``path`` with HTTP ``status`` (e.g. 502) and a
        non-JSON body, before any other check, as a failing gateway would."""
        self._http_failures.setdefault(path, deque()).extend([status] * times)

    def stall_next(self, path: str, times: int = 1) -> None:
        """Leave the next ``times`` calls to ``path`` unanswered until the client hangs up
        (its timeout), as an overloaded platform does."""
        self._stalls[path] = self._stalls.get(path, 0) + times

    def add_media(
        self,
        data: bytes = b"",
        *,
        content_type: str,
        filename: str = "media",
        video: bool = False,
        chunks: Callable[[], Iterable[bytes]] | None = None,
        size: int | None = None,
    ) -> str:
        """A member's media, as the platform holds it after they sent it; its media id.
        ``chunks`` (with ``size``, or None for a chunked body) makes a large body lazily."""
        media_id = f"fake-sent-{len(self.media) + 1}-{secrets.token_hex(8)}"
        if chunks is None:
            chunks, size = (lambda: [data]), len(data)
        self.media[media_id] = StoredMedia(chunks, content_type, filename, size, video)
        return media_id

    def not_following(self, openid: str) -> None:
        """``openid`` has unfollowed: custom/send and template/send to it answer 43004."""
        self._not_following.add(openid)

    def follow(self, openid: str) -> None:
        """``openid`` follows (again): undoes :meth:`not_following`."""
        self._not_following.discard(openid)

    # ---- inspection -----------------------------------------------------------------------

    def calls(self, path: str) -> list[Received]:
        """The recorded requests to ``path``, in order."""
        return [r for r in self.received if r.path == path]

    def sent_texts(self, openid: str | None = None) -> list[str]:
        """The contents of successful custom/send text messages (optionally to one openid)."""
        return [
            body["text"]["content"]
            for body in self.custom_sent
            if body.get("msgtype") == "text" and (openid is None or body["touser"] == openid)
        ]

    def sent_images(self, openid: str | None = None) -> list[str]:
        """The media ids of successful custom/send image messages (optionally to one openid)."""
        return [
            body["image"]["media_id"]
            for body in self.custom_sent
            if body.get("msgtype") == "image" and (openid is None or body["touser"] == openid)
        ]

    def sent_news(self, openid: str | None = None) -> list[dict[str, Any]]:
        """The article of each successful custom/send news message (optionally to one openid)."""
        return [
            body["news"]["articles"][0]
            for body in self.custom_sent
            if body.get("msgtype") == "news" and (openid is None or body["touser"] == openid)
        ]

    def sent_videos(self, openid: str | None = None) -> list[dict[str, Any]]:
        """The ``video`` object of each successful custom/send video message."""
        return [
            body["video"]
            for body in self.custom_sent
            if body.get("msgtype") == "video" and (openid is None or body["touser"] == openid)
        ]

    def forget_upload(self, media_id: str) -> None:
        """The platform drops an uploaded media (its 3 days are over): sending it is 40007."""
        self.uploads = [upload for upload in self.uploads if upload.media_id != media_id]

    def sent_templates(self, openid: str | None = None) -> list[dict[str, Any]]:
        """The bodies of successful template/send calls (optionally to one openid); a call
        repeating an earlier ``client_msg_id`` is not a second send."""
        return [b for b in self.templates_sent if openid is None or b["touser"] == openid]

    def token_is_valid(self, token: str | None) -> bool:
        """Whether API calls with ``token`` would be accepted now."""
        return self._token_error(token) is None

    # ---- the application ------------------------------------------------------------------

    def app(self) -> web.Application:
        """An aiohttp application serving this fake's endpoints."""
        application = web.Application(middlewares=[self._record])
        application.router.add_post(STABLE_TOKEN, self._stable_token)
        application.router.add_post(CUSTOM_SEND, self._custom_send)
        application.router.add_post(TEMPLATE_SEND, self._template_send)
        application.router.add_post(MEDIA_UPLOAD, self._media_upload)
        application.router.add_post(MENU_CREATE, self._menu_create)
        application.router.add_get(MEDIA_GET, self._media_get)
        application.router.add_get(VIDEO_DOWNLOAD, self._video_download, name="video")
        return application

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Record every request, then apply the optional delay and queued HTTP failures."""
        received = Received(
            path=request.path, query=dict(request.query), body={}, method=request.method
        )
        if not request.content_type.startswith("multipart/"):
            raw = (await request.read()).decode("utf-8", errors="replace")
            received.raw = raw
            received.body = _parse_object(raw) or {}
        self.received.append(received)
        request[_RECEIVED_KEY] = received
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        if self._stalls.get(request.path):
            self._stalls[request.path] -= 1
            return await _stall(request)
        statuses = self._http_failures.get(request.path)
        if statuses:
            status = statuses.popleft()
            return web.Response(status=status, text=f"{status} fake gateway failure")
        return await handler(request)

    # ---- endpoints ------------------------------------------------------------------------

    async def _stable_token(self, request: web.Request) -> web.Response:
        body = _parse_object(request[_RECEIVED_KEY].raw)
        if body is None:
            return _error(47001)
        if body.get("grant_type") != "client_credential":
            return _error(40002)
        if body.get("appid") != self.appid:
            return _error(40013)
        if body.get("secret") != self.secret:
            return _error(40125)
        if (failure := self._queued_failure(request.path)) is not None:
            return failure
        force = body.get("force_refresh", False)
        if not isinstance(force, bool):
            return _error(47001)
        now = self.clock()
        record = self._tokens.get(self.current_token) if self.current_token else None
        if force or record is None or not self._reusable(record, now):
            record = self._issue(now)
        remaining = self.token_lifetime - (now - record.issued_at)
        expires_in = min(self.token_lifetime, max(1, math.ceil(remaining)))
        return web.json_response({"access_token": record.value, "expires_in": expires_in})

    async def _custom_send(self, request: web.Request) -> web.Response:
        if (denied := self._check_token(request)) is not None:
            return denied
        received = request[_RECEIVED_KEY]
        if not received.raw.strip():
            return _error(44002)
        body = _parse_object(received.raw)
        if body is None:
            return _error(47001)
        touser = body.get("touser")
        if not isinstance(touser, str) or not touser:
            return _error(40003)
        if body.get("msgtype") in ("image", "video"):
            kind = body["msgtype"]
            media = body.get(kind)
            media_id = media.get("media_id") if isinstance(media, dict) else None
            if media_id not in {u.media_id for u in self.uploads if u.type == kind}:
                return _error(40007)  # invalid media_id
            if kind == "video" and any(
                not isinstance(media.get(name, ""), str) for name in ("title", "description")
            ):
                return _error(47001)
        elif body.get("msgtype") == "news":
            if (problem := _news_problem(body.get("news"))) is not None:
                return _error(*problem)
        elif body.get("msgtype") != "text":
            return _error(40008)
        else:
            text = body.get("text")
            content = text.get("content") if isinstance(text, dict) else None
            if not isinstance(content, str) or not content:
                return _error(44002, "empty content")
            if len(content.encode("utf-8")) > TEXT_LIMIT_BYTES:
                return _error(45002)
        if (failure := self._queued_failure(request.path)) is not None:
            return failure
        if touser in self._not_following:
            return _error(43004)
        self.custom_sent.append(body)
        return _error(0)

    async def _template_send(self, request: web.Request) -> web.Response:
        if (denied := self._check_token(request)) is not None:
            return denied
        received = request[_RECEIVED_KEY]
        if not received.raw.strip():
            return _error(44002)
        body = _parse_object(received.raw)
        if body is None:
            return _error(47001)
        touser = body.get("touser")
        if not isinstance(touser, str) or not touser:
            return _error(40003)
        template_id = body.get("template_id")
        if not isinstance(template_id, str) or not template_id:
            return _error(40037)
        if (problem := _template_data_problem(body.get("data"))) is not None:
            return _error(47003, f"argument invalid! {problem}")
        for optional in ("url", "client_msg_id"):
            if optional in body and not isinstance(body[optional], str):
                return _error(47003, f"argument invalid! {optional} invalid")
        if (failure := self._queued_failure(request.path)) is not None:
            return failure
        if touser in self._not_following:
            return _error(43004)
        client_msg_id = body.get("client_msg_id")
        if client_msg_id and client_msg_id in self._client_msg_ids:
            msgid = self._client_msg_ids[client_msg_id]
        else:
            msgid = next(self._msgids)
            if client_msg_id:
                self._client_msg_ids[client_msg_id] = msgid
            self.templates_sent.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": msgid})

    async def _media_upload(self, request: web.Request) -> web.Response:
        if (denied := self._check_token(request)) is not None:
            return denied
        received = request[_RECEIVED_KEY]
        media_type = request.query.get("type", "")
        if media_type not in MEDIA_TYPES:
            return _error(40004)
        if not request.content_type.startswith("multipart/"):
            return _error(41005)
        media: tuple[str | None, str | None, bytes] | None = None
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue
            data = await part.read()
            content_type = part.headers.get("Content-Type")
            received.body[part.name or ""] = {
                "filename": part.filename,
                "content_type": content_type,
                "size": len(data),
            }
            if part.name == "media" and media is None:
                media = (part.filename, content_type, bytes(data))
        if media is None or not media[2]:
            return _error(41005)
        filename, content_type, data = media
        if media_type == "image" and len(data) > IMAGE_LIMIT_BYTES:
            return _error(40009)
        if media_type == "video" and len(data) > VIDEO_LIMIT_BYTES:
            return _error(40006)
        if (failure := self._queued_failure(request.path)) is not None:
            return failure
        created_at = CREATED_AT_BASE + len(self.uploads)
        upload = Upload(
            media_id=f"fake-media-{len(self.uploads) + 1}-{secrets.token_hex(8)}",
            type=media_type,
            filename=filename,
            content_type=content_type,
            data=data,
            created_at=created_at,
        )
        self.uploads.append(upload)
        return web.json_response(
            {"type": media_type, "media_id": upload.media_id, "created_at": created_at}
        )

    async def _media_get(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._check_token(request)) is not None:
            return denied
        media_id = request.query.get("media_id", "")
        if (failure := self._queued_failure(request.path)) is not None:
            return failure
        found = self._media_by_id(media_id)
        if found is None:
            return _error(40007)
        if found.video:
            url = request.url.origin().join(request.app.router["video"].url_for(media_id=media_id))
            return web.json_response({"video_url": str(url)})
        return await _send_media(request, found)

    async def _video_download(self, request: web.Request) -> web.StreamResponse:
        found = self.media.get(request.match_info["media_id"])
        if found is None or not found.video:
            raise web.HTTPNotFound()
        return await _send_media(request, found)

    def _media_by_id(self, media_id: str) -> StoredMedia | None:
        if media_id in self.media:
            return self.media[media_id]
        for upload in self.uploads:
            if upload.media_id == media_id:
                data = upload.data
                kind = upload.content_type or "application/octet-stream"
                return StoredMedia(lambda data=data: [data], kind, upload.filename or "", len(data))
        return None

    async def _menu_create(self, request: web.Request) -> web.Response:
        if (denied := self._check_token(request)) is not None:
            return denied
        received = request[_RECEIVED_KEY]
        if not received.raw.strip():
            return _error(44002)
        body = _parse_object(received.raw)
        if body is None:
            return _error(47001)
        buttons = body.get("button")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= MAX_TOP_BUTTONS:
            return _error(40016)
        if (failure := self._queued_failure(request.path)) is not None:
            return failure
        self.menus.append(received.raw)
        return _error(0)

    # ---- internals ------------------------------------------------------------------------

    def _issue(self, now: float) -> _Token:
        """Issue a new current token; the previous one keeps working for ``grace`` seconds."""
        previous = self._tokens.get(self.current_token) if self.current_token else None
        if previous is not None:
            previous.valid_until = min(previous.valid_until, now + self.grace)
        value = f"fake-token-{len(self.tokens_issued) + 1}-{secrets.token_hex(12)}"
        record = _Token(value=value, issued_at=now, valid_until=now + self.token_lifetime)
        self._tokens[value] = record
        self.tokens_issued.append(value)
        self.current_token = value
        return record

    def _reusable(self, record: _Token, now: float) -> bool:
        """Whether stable_token without force_refresh may hand ``record`` out again."""
        if record.revoked or now >= record.valid_until:
            return False
        remaining = record.issued_at + self.token_lifetime - now
        return not (self.token_lifetime > self.rotate_before and remaining <= self.rotate_before)

    def _token_error(self, token: str | None) -> int | None:
        """The errcode an API call with ``token`` gets, or None when the token is good.

        A missing, unknown or revoked token gets 40001; one past its lifetime gets 42001, as
        on the real platform (a sender handles both the same way).
        """
        record = self._tokens.get(token) if token else None
        if record is None or record.revoked:
            return 40001
        if self.clock() >= record.valid_until:
            return 42001
        return None

    def _check_token(self, request: web.Request) -> web.Response | None:
        code = self._token_error(request.query.get("access_token"))
        return None if code is None else _error(code)

    def _queued_failure(self, path: str) -> web.Response | None:
        queue = self._failures.get(path)
        if not queue:
            return None
        errcode, errmsg = queue.popleft()
        return _error(errcode, errmsg)


async def _send_media(request: web.Request, media: StoredMedia) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": media.content_type,
            "Content-disposition": f'attachment; filename="{media.filename}"',
        }
    )
    if media.size is not None:
        response.content_length = media.size
    await response.prepare(request)
    for chunk in media.chunks():
        await response.write(chunk)
    await response.write_eof()
    return response


async def _stall(request: web.Request) -> web.StreamResponse:
    """No answer until the client hangs up (the server is told when its transport closes)."""
    # aiohttp tells a handler of a hang-up only through its transport.
    while request.transport is not None and not request.transport.is_closing():  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    return web.Response(status=504)


def repeated(block: bytes, size: int) -> Callable[[], Iterator[bytes]]:
    """A body of `size` bytes made of `block` repeated, produced a block at a time."""

    def chunks() -> Iterator[bytes]:
        left = size
        while left > 0:
            yield block[:left]
            left -= len(block)

    return chunks


def _parse_object(raw: str) -> dict[str, Any] | None:
    """The JSON object in ``raw``, or None when it is not one."""
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _template_data_problem(data: Any) -> str | None:
    """Why a template's ``data`` is malformed, or None when it is a dict of {"value": str}."""
    if not isinstance(data, dict):
        return "data invalid"
    for key, item in data.items():
        if not isinstance(item, dict) or not isinstance(item.get("value"), str):
            return f"data.{key}.value invalid"
    return None


def _news_problem(news: Any) -> tuple[int, str] | None:
    """What the platform says of a news message's ``news`` object, or None when it is good."""
    articles = news.get("articles") if isinstance(news, dict) else None
    if not isinstance(articles, list) or not articles:
        return 47001, "data format error"
    if len(articles) > NEWS_ARTICLES:
        return 45008, ""
    for article in articles:
        if not isinstance(article, dict) or not isinstance(article.get("title"), str):
            return 47001, "data format error"
        for name in ("description", "url", "picurl"):
            if not isinstance(article.get(name, ""), str):
                return 47001, "data format error"
        for name in ("url", "picurl"):
            if article.get(name) and not article[name].startswith(("http://", "https://")):
                return 47003, f"argument invalid! {name} invalid"
    return None


def _error(errcode: int, errmsg: str = "") -> web.Response:
    """A platform answer ``{"errcode", "errmsg"}`` with HTTP 200."""
    message = errmsg or ERRMSGS.get(errcode, "error")
    return web.json_response(
        {"errcode": errcode, "errmsg": message}, dumps=lambda o: json.dumps(o, ensure_ascii=False)
    )
