"""The WeCom (企业微信) self-built app's callback: `GET /wecom` (URL check) and `POST /wecom`
(messages), always encrypted.

WeCom speaks WeChat's envelope with the CorpID as the ReceiveId, so the WeChat adapter's
checks (constant-time signatures, the replay window, defused XML) and its translation into
an `Inbound` are reused; what differs is here: the echostr to decrypt, `enter_agent`, no
push window, the AgentID, and the UserId the enterprise may vouch for.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping

from aiohttp import web
from wechatpy.enterprise import parse_message
from wechatpy.enterprise.crypto import WeChatCrypto as WeComCrypto
from wechatpy.enterprise.messages import TextMessage
from wechatpy.enterprise.replies import TextReply
from wechatpy.messages import BaseMessage

from bot.channels import wechat
from bot.channels.wechat import (
    PAIR_REUSED,
    UNREADABLE,
    FileMessage,
    answer,
    cdata_safe,
    dedupe_key,
    with_pair,
)
from bot.channels.wechat_envelope import (
    Refused,
    SafeMode,
    check_fresh,
    check_nonce,
    check_signature,
    parse_xml,
)
from bot.clock import Clock, unix_seconds
from bot.messages import Inbound, InboundKind, Sender, cut_to_fit
from bot.settings import Settings

log = logging.getLogger(__name__)

CHANNEL = "wecom"
# An echostr is a few dozen Base64 characters; anything longer is not WeCom's.
MAX_ECHOSTR = 1024


def read_message(fields: Mapping[str, str], xml: str) -> BaseMessage:
    """wechatpy.enterprise's message for the decrypted XML (read into `fields` by the
    defused parser first): text from the fields, files (which wechatpy does not know) as
    the WeChat adapter reads them, the rest through wechatpy's parser."""
    if fields.get("MsgType") == "text":
        return TextMessage(dict(fields))
    if fields.get("MsgType") == "file":
        return FileMessage(dict(fields))
    return parse_message(xml)


def to_inbound(
    message: BaseMessage, clock: Clock, click_commands: Mapping[str, str], vouched: bool
) -> Inbound:
    """The message as every channel's `Inbound`: as on WeChat, but from the `wecom` channel,
    without a push window (app messages have none), with `enter_agent` as OPENED."""
    if not message.source:
        raise ValueError("the message has no FromUserName")
    sender = Sender(CHANNEL, str(message.source))
    if message.type == "event" and message.event == "enter_agent":
        inbound = Inbound(sender, dedupe_key(message), InboundKind.OPENED, clock.now())
    else:
        inbound = wechat.to_inbound(message, clock, click_commands)
        inbound = dataclasses.replace(inbound, sender=sender, window=None)
    return dataclasses.replace(inbound, vouched=vouched)


class WeComWebhook:
    """Translates between WeCom's wire format and the conversation; decides nothing itself."""

    def __init__(self, settings: Settings, clock: Clock, click_commands: Mapping[str, str]) -> None:
        settings.require_wecom()
        assert settings.wecom_token and settings.wecom_corp_id and settings.wecom_aes_key
        self.corp_id = settings.wecom_corp_id
        self.agent_id = settings.wecom_agent_id
        self.safe = SafeMode.create(
            settings.wecom_token, self.corp_id, settings.wecom_aes_key, None, WeComCrypto
        )
        self.window = settings.replay_window_seconds
        self.clock = clock
        self.click_commands = dict(click_commands)
        self.vouched = settings.wecom_autobind

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/wecom", self.verify_url), web.post("/wecom", self.receive)]

    def _check_query(self, query: Mapping[str, str]) -> None:
        check_fresh(query.get("timestamp"), unix_seconds(self.clock), self.window)
        check_nonce(query.get("nonce"))

    async def verify_url(self, request: web.Request) -> web.Response:
        """The plaintext of `echostr`, alone, once its `msg_signature` is right."""
        query = request.query
        try:
            self._check_query(query)
            plain = self._decrypt_echo(query)
        except Refused as refused:
            return self._refuse(refused)
        return web.Response(text=plain)

    def _decrypt_echo(self, query: Mapping[str, str]) -> str:
        echostr = query.get("echostr", "")
        if not echostr or len(echostr) > MAX_ECHOSTR:
            raise Refused(400, "missing or oversized echostr")
        signature = query.get("msg_signature")
        check_signature((self.safe.token, query["timestamp"], query["nonce"], echostr), signature)
        assert signature is not None
        try:
            crypto = self.safe.current
            return str(
                crypto.check_signature(
                    signature.lower(), query["timestamp"], query["nonce"], echostr
                )
            )
        except Exception:  # wechatpy raises many kinds for a wrong key, corp or corrupt data
            raise Refused(400, "cannot decrypt echostr") from None

    async def receive(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            self._check_query(query)
            envelope = parse_xml(await request.read())
            xml = self.safe.decrypt(
                envelope, query.get("msg_signature"), query["timestamp"], query["nonce"]
            )
            fields = parse_xml(xml)
            self._check_addressee(fields)
            message = read_message(fields, xml)
            inbound = to_inbound(message, self.clock, self.click_commands, self.vouched)
        except Refused as refused:
            return self._refuse(refused)
        except UNREADABLE as exc:
            log.warning("unreadable WeCom message: %r", exc)
            return web.Response(status=400, text="unreadable message")
        text = await answer(request, with_pair(inbound, query, xml))
        if text is None:
            return self._refuse(Refused(403, PAIR_REUSED))
        return self._reply(message, text, query["nonce"])

    def _check_addressee(self, fields: Mapping[str, str]) -> None:
        """The message is for this corp (the ReceiveId said so already) and this app: a corp's
        apps may share a Token and key, and one app's messages are not another's."""
        if fields.get("ToUserName", self.corp_id) != self.corp_id:
            raise Refused(403, "message for another corp")
        agent = fields.get("AgentID")
        if self.agent_id is not None and agent and agent.strip() != str(self.agent_id):
            raise Refused(403, "message for another app")

    def _refuse(self, refused: Refused) -> web.Response:
        log.warning("refused WeCom request: %s", refused.reason)
        return web.Response(status=refused.status, text=refused.reason)

    def _reply(self, message: BaseMessage, text: str, nonce: str) -> web.Response:
        if not text:
            return web.Response(text="")  # WeCom's "nothing to say"
        now = unix_seconds(self.clock)
        reply = TextReply(
            source=message.target,
            target=message.source,
            agent=getattr(message, "agent", None) or self.agent_id or 0,
            content=cdata_safe(cut_to_fit(text)),
            time=now,
        ).render()
        encrypted = self.safe.encrypt(reply, nonce, now)
        return web.Response(text=encrypted, content_type="application/xml")
