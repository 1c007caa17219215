"""The WeChat Official Account webhook: `GET /wechat` (URL check) and `POST /wechat` (messages)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from wechatpy import parse_message
from wechatpy.fields import StringField
from wechatpy.messages import BaseMessage, TextMessage
from wechatpy.replies import TextReply

from bot.appkeys import CONVERSATION
from bot.channels.wechat_envelope import (
    Refused,
    SafeMode,
    check_fresh,
    check_nonce,
    check_signature,
    parse_xml,
)
from bot.clock import Clock, unix_seconds
from bot.conversation import PairReused
from bot.messages import (
    ContactWindow,
    Inbound,
    InboundKind,
    Media,
    RequestPair,
    Sender,
    bounded_text,
    cut_to_fit,
)
from bot.settings import Settings
from data import seen_requests

log = logging.getLogger(__name__)

CHANNEL = "wechat"
MAX_BODY_BYTES = 1024 * 1024
TEXT_TYPES = {"text"}
MEDIA_TYPES = {"image", "video", "shortvideo", "location", "link", "file"}
# What a request's message may fail with when a field is missing or malformed: the webhook
# answers 400 and nothing changes.
UNREADABLE: tuple[type[Exception], ...] = (KeyError, TypeError, ValueError, AttributeError)
# What the platform allows after the member acts: customer-service messages for 48 hours,
# 5 of them, after a message; for 1 minute, 3 of them, after a subscribe, scan or click.
MESSAGE_WINDOW = ContactWindow(dt.timedelta(hours=48), 5)
EVENT_WINDOW = ContactWindow(dt.timedelta(minutes=1), 3)
EVENTS_OPENING_WINDOW = {"subscribe", "subscribe_scan", "scan", "click"}


class FileMessage(BaseMessage):
    """A file a member sends (MsgType `file`). wechatpy (1.8 and its master alike) has no
    type for it, and the platform's message list does not document it; the fields are those
    the platform posts: Title (the file name), FileKey, FileMd5, FileTotalLen — and MediaId,
    which we prefer when present."""

    type = "file"
    media_id = StringField("MediaId")
    file_key = StringField("FileKey")
    title = StringField("Title")


def dedupe_key(message: BaseMessage) -> str:
    """MsgId for messages; events carry none, so sender + time + event + key stand for it."""
    if message.id:
        return str(message.id)
    event = getattr(message, "event", "")
    key = getattr(message, "key", "") or ""
    return f"{message.source}:{message.time}:{event}:{key}"


def to_inbound(message: BaseMessage, clock: Clock, click_commands: Mapping[str, str]) -> Inbound:
    if not message.source:
        raise ValueError("the message has no FromUserName")
    sender = Sender(CHANNEL, str(message.source))
    key = dedupe_key(message)

    kind = message.type
    window = MESSAGE_WINDOW if kind != "event" else None
    if kind == "event" and message.event in EVENTS_OPENING_WINDOW:
        window = EVENT_WINDOW

    def inbound(kind: InboundKind, text: str = "") -> Inbound:
        return Inbound(sender, key, kind, clock.now(), text, window)

    if kind in TEXT_TYPES:
        return inbound(InboundKind.TEXT, bounded_text(str(message.content or "")))
    if kind == "voice":
        # Speech recognition must be switched on in the account's console to fill this.
        recognised = str(getattr(message, "recognition", None) or "").rstrip("。.!！")
        return (
            inbound(InboundKind.TEXT, bounded_text(recognised))
            if recognised
            else inbound(InboundKind.UNSUPPORTED)
        )
    if kind in ("image", "video", "shortvideo", "file"):
        reference = str(
            getattr(message, "media_id", "")
            or getattr(message, "image", "")
            or getattr(message, "file_key", "")
            or ""
        )
        media = Media({"image": "image", "file": "file"}.get(kind, "video"), reference)
        return Inbound(sender, key, InboundKind.MEDIA, clock.now(), "", window, (media,))
    if kind in MEDIA_TYPES:
        return inbound(InboundKind.UNSUPPORTED)
    if kind == "event":
        event = message.event
        if event in ("subscribe", "subscribe_scan"):
            return inbound(InboundKind.SUBSCRIBE)
        if event == "unsubscribe":
            return inbound(InboundKind.UNSUBSCRIBE)
        if event == "click" and message.key in click_commands:
            return inbound(InboundKind.TEXT, click_commands[message.key])
    return inbound(InboundKind.SILENT)


def read_message(fields: Mapping[str, str], xml: bytes | str) -> BaseMessage:
    """wechatpy's message object for a request whose XML was read into `fields` (by the
    defused parser): a text message — most of the traffic — is made from those fields;
    anything else goes through wechatpy's own parser (events nest elements, and it tells
    their kinds apart)."""
    if fields.get("MsgType") == "text":
        return TextMessage(dict(fields))
    if fields.get("MsgType") == "file":
        return FileMessage(dict(fields))
    return parse_message(xml)


def cdata_safe(text: str) -> str:
    # wechatpy writes text into CDATA unescaped; a "]]>" typed by a member would end it.
    return text.replace("]]>", "]]]]><![CDATA[>")


def with_pair(inbound: Inbound, query: Mapping[str, str], xml: bytes | str) -> Inbound:
    """`inbound` carrying its request's (timestamp, nonce) and body digest: the conversation
    remembers the pair in the message's transaction and refuses another body with it."""
    digest = seen_requests.body_hash(xml)
    return dataclasses.replace(
        inbound, pair=RequestPair(int(query["timestamp"]), query["nonce"], digest)
    )


async def answer(request: web.Request, inbound: Inbound) -> str | None:
    """The conversation's reply to `inbound`; None when its request's pair came before with
    another body (refuse it: 403)."""
    try:
        return await request.app[CONVERSATION].respond(inbound)
    except PairReused:
        return None


PAIR_REUSED = "timestamp and nonce already used with another message"


class WeChatWebhook:
    """Translates between the WeChat wire format and the conversation; decides nothing itself."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        click_commands: Mapping[str, str],
    ) -> None:
        settings.require_wechat()
        assert settings.wechat_token is not None
        self.token = settings.wechat_token
        self.window = settings.replay_window_seconds
        self.clock = clock
        self.click_commands = dict(click_commands)
        self.safe: SafeMode | None = None
        if settings.wechat_aes_key:
            assert settings.wechat_appid is not None
            self.safe = SafeMode.create(
                self.token,
                settings.wechat_appid,
                settings.wechat_aes_key,
                settings.wechat_aes_key_previous,
            )
        # Without an AES key every request is plain; with one, plain requests are accepted
        # only in compatibility mode (兼容模式), when the operator says so.
        self.plain_accepted = self.safe is None or settings.wechat_compat
        # Plain bodies are not signed, so their (timestamp, nonce) pairs are remembered. An
        # encrypted body needs no memory on its own: `msg_signature` covers the nonce and the
        # Encrypt element, so a replayed pair brings the same message, which the message
        # dedupe answers once. While plain requests are accepted too (compatibility mode) the
        # pairs of encrypted requests are remembered as well, with the decrypted message:
        # else a captured encrypted request's query could carry a forged plain body.
        self.remember_pairs = self.plain_accepted

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/wechat", self.verify_url), web.post("/wechat", self.receive)]

    def _check_query(self, query: Mapping[str, str]) -> None:
        check_fresh(query.get("timestamp"), unix_seconds(self.clock), self.window)
        check_nonce(query.get("nonce"))
        parts = (self.token, query.get("timestamp", ""), query.get("nonce", ""))
        check_signature(parts, query.get("signature"))

    async def verify_url(self, request: web.Request) -> web.Response:
        try:
            self._check_query(request.query)
        except Refused as refused:
            return web.Response(status=refused.status, text=refused.reason)
        return web.Response(text=request.query.get("echostr", ""))

    async def receive(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            self._check_query(query)
            body = await request.read()
            fields = parse_xml(body)
            encrypted = query.get("encrypt_type") == "aes"
            xml: bytes | str = body
            if encrypted:
                if self.safe is None:
                    raise Refused(400, "encrypted message but QIYI_WECHAT_AES_KEY is not set")
                xml = self.safe.decrypt(
                    fields, query.get("msg_signature"), query["timestamp"], query["nonce"]
                )
                fields = parse_xml(xml)
            elif not self.plain_accepted:
                raise Refused(403, "plain request in safe mode (QIYI_WECHAT_COMPAT is off)")
            message = read_message(fields, xml)
            inbound = to_inbound(message, self.clock, self.click_commands)
        except Refused as refused:
            return self._refuse(refused)
        except UNREADABLE as exc:
            log.warning("unreadable WeChat message: %r", exc)
            return web.Response(status=400, text="unreadable message")
        if self.remember_pairs:
            inbound = with_pair(inbound, query, xml)
        text = await answer(request, inbound)
        if text is None:
            return self._refuse(Refused(403, PAIR_REUSED))
        return self._reply(message, text, query, encrypted)

    def _refuse(self, refused: Refused) -> web.Response:
        log.warning("refused WeChat request: %s", refused.reason)
        return web.Response(status=refused.status, text=refused.reason)

    def _reply(
        self, message: BaseMessage, text: str, query: Mapping[str, Any], encrypted: bool
    ) -> web.Response:
        if not text:
            return web.Response(text="success")
        now = unix_seconds(self.clock)
        reply = TextReply(
            source=message.target,
            target=message.source,
            content=cdata_safe(cut_to_fit(text)),
            time=now,
        ).render()
        if encrypted and self.safe is not None:
            reply = self.safe.encrypt(reply, query["nonce"], now)
        return web.Response(text=reply, content_type="application/xml")
