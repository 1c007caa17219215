"""The WeChat webhook end to end: signed HTTP requests in, reply XML out, rows in the database.

Requests are built here from the protocol (PROTOCOLS.md), not with the product's helpers:
`signature = sha1(sorted([token, timestamp, nonce]))`, and wechatpy's `WeChatCrypto` for
the AES envelopes of safe mode.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import xmltodict
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from wechatpy.crypto import WeChatCrypto

from bot.app import create_app
from bot.appkeys import CONVERSATION, ENGINE
from bot.clock import FixedClock
from bot.settings import Settings
from content.texts import render
from data.models import Binding, ProcessedMessage, StudyEntry
from tests.conftest import TOKEN, make_settings, seed

AppClientFactory = Callable[[Any], Awaitable[TestClient]]

ACCOUNT = "gh_qiyi0000test"  # the official account (ToUserName of inbound messages)
MEMBER = "oMember1001xxxxxxxxxxxxxxxxx"  # the openid bound to roster member 1001 (张三)
STRANGER = "oStrangerxxxxxxxxxxxxxxxxxxx"  # an openid bound to nobody

APPID = "wx0123456789abcdef"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OLD_AES_KEY = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
UNKNOWN_AES_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsrqponmlkj"

MAX_BODY = 1024 * 1024


def sign(*parts: str) -> str:
    """WeChat's signature: sha1 over the sorted, concatenated parts, in hex."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def message_xml(source: str, msg_type: str, create_time: int, **fields: str | int) -> str:
    """An inbound message as WeChat posts it (strings in CDATA, numbers bare)."""
    parts = [
        f"<ToUserName>{cdata(ACCOUNT)}</ToUserName>",
        f"<FromUserName>{cdata(source)}</FromUserName>",
        f"<CreateTime>{create_time}</CreateTime>",
        f"<MsgType>{cdata(msg_type)}</MsgType>",
    ]
    for name, value in fields.items():
        text = str(value) if isinstance(value, int) else cdata(value)
        parts.append(f"<{name}>{text}</{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


def parse_reply(body: str) -> dict[str, Any]:
    """The fields of a reply; fails the test if the reply is not well-formed XML."""
    return dict(xmltodict.parse(body)["xml"])


@dataclass
class WeChat:
    """Plays the WeChat platform against the test server: signs, encrypts and posts."""

    client: TestClient
    now: int
    token: str = TOKEN
    crypto: WeChatCrypto | None = None  # the account's current key (safe mode)
    _nonces: itertools.count[int] = field(default_factory=lambda: itertools.count(1_514_711_492))
    _msg_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(6_054_768_590))

    def nonce(self) -> str:
        return str(next(self._nonces))

    def msg_id(self) -> int:
        return next(self._msg_ids)

    def query(
        self, timestamp: int | None = None, nonce: str | None = None, **extra: str
    ) -> dict[str, str]:
        ts = str(self.now if timestamp is None else timestamp)
        nonce = nonce or self.nonce()
        return {"signature": sign(self.token, ts, nonce), "timestamp": ts, "nonce": nonce, **extra}

    async def post(self, body: str | bytes, query: dict[str, str] | None = None) -> ClientResponse:
        return await self.client.post("/wechat", params=query or self.query(), data=body)

    async def exchange(self, xml: str, **query: Any) -> str:
        """Posts a plain message; asserts 200 and returns the raw reply body."""
        response = await self.post(xml, self.query(**query))
        assert response.status == 200, await response.text()
        return await response.text()

    async def text(self, source: str, content: str, msg_id: int | None = None) -> dict[str, Any]:
        """Sends a text message and returns the fields of the text reply."""
        xml = message_xml(source, "text", self.now, Content=content, MsgId=msg_id or self.msg_id())
        reply = parse_reply(await self.exchange(xml))
        assert reply["MsgType"] == "text"
        return reply

    async def event(self, source: str, event: str, key: str = "", create_time: int = 0) -> str:
        """Sends an event; returns the raw reply body."""
        fields: dict[str, str | int] = {"Event": event}
        if key:
            fields["EventKey"] = key
        return await self.exchange(message_xml(source, "event", create_time or self.now, **fields))

    def encrypted_request(
        self,
        xml: str,
        crypto: WeChatCrypto | None = None,
        msg_signature: str | None = None,
        plain_fields: str = "",
    ) -> tuple[str, dict[str, str]]:
        """The body and query of a safe-mode POST carrying `xml` (compatible mode: plus
        `plain_fields`)."""
        crypto = crypto or self.crypto
        assert crypto is not None
        query = self.query(encrypt_type="aes", openid=MEMBER)
        ts, nonce = query["timestamp"], query["nonce"]
        encrypt = xmltodict.parse(crypto.encrypt_message(xml, nonce, ts))["xml"]["Encrypt"]
        query["msg_signature"] = msg_signature or sign(self.token, ts, nonce, encrypt)
        body = (
            f"<xml><ToUserName>{cdata(ACCOUNT)}</ToUserName>{plain_fields}"
            f"<Encrypt>{cdata(encrypt)}</Encrypt></xml>"
        )
        return body, query

    def open_reply(self, body: str) -> dict[str, Any]:
        """Checks an encrypted reply's MsgSignature and returns its decrypted fields."""
        assert self.crypto is not None
        envelope = parse_reply(body)
        assert set(envelope) == {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
        ts, nonce = envelope["TimeStamp"], envelope["Nonce"]
        assert envelope["MsgSignature"] == sign(self.token, ts, nonce, envelope["Encrypt"])
        inner = self.crypto.decrypt_message(body, envelope["MsgSignature"], ts, nonce)
        return parse_reply(inner)


async def start(aiohttp_client: AppClientFactory, settings: Settings, clock: FixedClock) -> WeChat:
    client = await aiohttp_client(create_app(settings, clock))
    await seed(client.app[CONVERSATION])
    crypto = WeChatCrypto(TOKEN, settings.wechat_aes_key, APPID) if settings.safe_mode else None
    return WeChat(client, int(clock.now().timestamp()), crypto=crypto)


async def bind_member(wechat: WeChat) -> None:
    if wechat.crypto is not None:  # safe mode takes encrypted requests only
        xml = message_xml(MEMBER, "text", wechat.now, Content="绑定 1001 张三", MsgId=999)
        response = await wechat.post(*wechat.encrypted_request(xml))
        assert "绑定成功" in wechat.open_reply(await response.text())["Content"]
        return
    reply = await wechat.text(MEMBER, "绑定 1001 张三")
    assert "绑定成功" in reply["Content"]


async def rows(wechat: WeChat, model: type[Any], *where: Any) -> list[Any]:
    async with AsyncSession(wechat.client.app[ENGINE]) as session:
        return list((await session.exec(select(model).where(*where))).all())


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Member 1001 binds with `绑定 工号 姓名` here; the proofs: tests/security/test_binding_*.
    return make_settings(database_url, bind_proof="name")


@pytest.fixture
async def wechat(
    aiohttp_client: AppClientFactory,
    settings: Settings,
    clock: FixedClock,
    engine: AsyncEngine,  # a clean, migrated database (PostgreSQL is reset)
) -> WeChat:
    """Plain mode, with member 1001 bound to MEMBER."""
    wechat = await start(aiohttp_client, settings, clock)
    await bind_member(wechat)
    return wechat


@pytest.fixture
async def safe_wechat(
    aiohttp_client: AppClientFactory,
    database_url: str,
    clock: FixedClock,
    engine: AsyncEngine,
) -> WeChat:
    """Safe mode in the middle of a key rotation, with member 1001 bound to MEMBER."""
    settings = make_settings(
        database_url,
        wechat_aes_key=AES_KEY,
        wechat_aes_key_previous=OLD_AES_KEY,
        wechat_appid=APPID,
        bind_proof="name",
    )
    wechat = await start(aiohttp_client, settings, clock)
    await bind_member(wechat)
    return wechat


# --- URL verification (GET) --------------------------------------------------------------

ECHOSTR = "6305913867 echo+/=&中文"


async def test_url_check_echoes_echostr_verbatim(wechat: WeChat) -> None:
    response = await wechat.client.get("/wechat", params=wechat.query(echostr=ECHOSTR))
    assert response.status == 200
    assert await response.text() == ECHOSTR


async def test_url_check_refuses_a_bad_signature(wechat: WeChat) -> None:
    query = wechat.query(echostr=ECHOSTR)
    query["signature"] = sign("another-token", query["timestamp"], query["nonce"])
    response = await wechat.client.get("/wechat", params=query)
    assert response.status == 403
    assert ECHOSTR not in await response.text()


async def test_url_check_refuses_a_stale_timestamp(wechat: WeChat) -> None:
    # Correctly signed, but ten minutes old.
    query = wechat.query(timestamp=wechat.now - 600, echostr=ECHOSTR)
    response = await wechat.client.get("/wechat", params=query)
    assert response.status == 403
    assert ECHOSTR not in await response.text()


# --- plain mode --------------------------------------------------------------------------


async def test_study_by_a_bound_member(wechat: WeChat) -> None:
    reply = await wechat.text(MEMBER, "学习 30")
    assert reply["ToUserName"] == MEMBER
    assert reply["FromUserName"] == ACCOUNT
    assert reply["CreateTime"] == str(wechat.now)
    assert "30/120" in reply["Content"]
    assert len(await rows(wechat, StudyEntry)) == 1


async def test_unbound_user_is_asked_to_bind(wechat: WeChat) -> None:
    reply = await wechat.text(STRANGER, "学习 30")
    assert reply["ToUserName"] == STRANGER
    assert reply["FromUserName"] == ACCOUNT
    assert reply["Content"] == render("bind_prompt", proof="name")
    assert await rows(wechat, StudyEntry) == []


async def test_help_lists_the_commands(wechat: WeChat) -> None:
    reply = await wechat.text(MEMBER, "帮助")
    assert reply["ToUserName"] == MEMBER
    assert "可用指令" in reply["Content"]
    assert "学习 <时长> [备注]" in reply["Content"]
    assert "请先绑定身份" not in reply["Content"]


async def test_voice_recognition_is_treated_as_text(wechat: WeChat) -> None:
    xml = message_xml(
        MEMBER,
        "voice",
        wechat.now,
        MediaId="media-id-1",
        Format="amr",
        Recognition="学习三十分钟。",
        MsgId=wechat.msg_id(),
    )
    reply = parse_reply(await wechat.exchange(xml))
    assert reply["ToUserName"] == MEMBER
    assert "30/120" in reply["Content"]
    assert [entry.minutes for entry in await rows(wechat, StudyEntry)] == [30]


async def test_image_gets_the_unsupported_text(wechat: WeChat) -> None:
    xml = message_xml(
        MEMBER,
        "image",
        wechat.now,
        PicUrl="http://mmbiz.qpic.cn/x.jpg",
        MediaId="media-id-2",
        MsgId=wechat.msg_id(),
    )
    reply = parse_reply(await wechat.exchange(xml))
    assert reply["ToUserName"] == MEMBER
    assert reply["FromUserName"] == ACCOUNT
    assert reply["Content"] == render("unsupported")


async def test_subscribe_gets_the_welcome(wechat: WeChat) -> None:
    reply = parse_reply(await wechat.event(STRANGER, "subscribe"))
    assert reply["ToUserName"] == STRANGER
    assert reply["FromUserName"] == ACCOUNT
    assert reply["Content"] == render("welcome", proof="name")


async def test_unsubscribe_acknowledges_and_marks_the_binding_unreachable(
    wechat: WeChat,
) -> None:
    [binding] = await rows(wechat, Binding, Binding.external_id == MEMBER)
    assert binding.reachable is True
    assert await wechat.event(MEMBER, "unsubscribe") == "success"
    [binding] = await rows(wechat, Binding, Binding.external_id == MEMBER)
    assert binding.reachable is False


async def test_menu_click_runs_its_command(wechat: WeChat) -> None:
    await wechat.text(MEMBER, "学习 30")
    reply = parse_reply(await wechat.event(MEMBER, "CLICK", key="STUDY_TODAY"))
    assert reply["ToUserName"] == MEMBER
    assert reply["FromUserName"] == ACCOUNT
    assert "今日学习：30/120 分钟" in reply["Content"]


# --- safe mode ---------------------------------------------------------------------------


async def test_safe_mode_encrypted_study_gets_an_encrypted_reply(safe_wechat: WeChat) -> None:
    xml = message_xml(MEMBER, "text", safe_wechat.now, Content="学习 30", MsgId=1)
    body, query = safe_wechat.encrypted_request(xml)
    response = await safe_wechat.post(body, query)
    assert response.status == 200
    raw = await response.text()
    assert "30/120" not in raw  # the reply travels encrypted
    reply = safe_wechat.open_reply(raw)
    assert reply["ToUserName"] == MEMBER
    assert reply["FromUserName"] == ACCOUNT
    assert reply["MsgType"] == "text"
    assert "30/120" in reply["Content"]


async def test_safe_mode_refuses_a_plain_request(safe_wechat: WeChat) -> None:
    # Plain bodies are not signed: with an AES key only encrypted ones are taken, unless
    # QIYI_WECHAT_COMPAT says the account runs in compatibility mode (tests/security).
    xml = message_xml(MEMBER, "text", safe_wechat.now, Content="学习 30", MsgId=7)
    response = await safe_wechat.post(xml)
    assert response.status == 403
    assert await rows(safe_wechat, StudyEntry) == []


async def test_compatible_mode_body_with_plain_and_encrypted_fields(safe_wechat: WeChat) -> None:
    xml = message_xml(MEMBER, "text", safe_wechat.now, Content="学习 30", MsgId=2)
    plain = (
        f"<FromUserName>{cdata(MEMBER)}</FromUserName><CreateTime>{safe_wechat.now}</CreateTime>"
        f"<MsgType>{cdata('text')}</MsgType><Content>{cdata('学习 30')}</Content><MsgId>2</MsgId>"
    )
    body, query = safe_wechat.encrypted_request(xml, plain_fields=plain)
    response = await safe_wechat.post(body, query)
    assert response.status == 200
    assert "30/120" in safe_wechat.open_reply(await response.text())["Content"]


async def test_safe_mode_accepts_the_previous_key_during_a_rotation(safe_wechat: WeChat) -> None:
    xml = message_xml(MEMBER, "text", safe_wechat.now, Content="学习 30", MsgId=3)
    body, query = safe_wechat.encrypted_request(xml, crypto=WeChatCrypto(TOKEN, OLD_AES_KEY, APPID))
    response = await safe_wechat.post(body, query)
    assert response.status == 200
    assert "30/120" in safe_wechat.open_reply(await response.text())["Content"]


async def test_safe_mode_refuses_an_unknown_key(safe_wechat: WeChat) -> None:
    xml = message_xml(MEMBER, "text", safe_wechat.now, Content="学习 30", MsgId=4)
    crypto = WeChatCrypto(TOKEN, UNKNOWN_AES_KEY, APPID)
    body, query = safe_wechat.encrypted_request(xml, crypto=crypto)
    response = await safe_wechat.post(body, query)
    assert response.status == 400
    assert await rows(safe_wechat, StudyEntry) == []


async def test_safe_mode_refuses_a_wrong_msg_signature(safe_wechat: WeChat) -> None:
    recorded_before = await rows(safe_wechat, ProcessedMessage)
    xml = message_xml(MEMBER, "text", safe_wechat.now, Content="学习 30", MsgId=5)
    body, query = safe_wechat.encrypted_request(xml, msg_signature="0" * 40)
    response = await safe_wechat.post(body, query)
    assert response.status == 403
    assert await rows(safe_wechat, ProcessedMessage) == recorded_before
    assert await rows(safe_wechat, StudyEntry) == []


async def test_safe_mode_refuses_a_query_signature_as_msg_signature(safe_wechat: WeChat) -> None:
    # The classic bug: checking the envelope against `signature` instead of `msg_signature`.
    xml = message_xml(MEMBER, "text", safe_wechat.now, Content="学习 30", MsgId=6)
    body, query = safe_wechat.encrypted_request(xml)
    query["msg_signature"] = query["signature"]
    response = await safe_wechat.post(body, query)
    assert response.status == 403
    assert await rows(safe_wechat, StudyEntry) == []


# --- retries -----------------------------------------------------------------------------


async def test_a_retried_message_gets_the_same_reply_and_counts_once(wechat: WeChat) -> None:
    msg_id = wechat.msg_id()
    first = await wechat.text(MEMBER, "学习 30", msg_id=msg_id)
    # WeChat retries with a new timestamp and nonce, and the same MsgId.
    wechat.now += 5
    second = await wechat.text(MEMBER, "学习 30", msg_id=msg_id)
    assert "30/120" in first["Content"]
    assert second["Content"] == first["Content"]
    assert len(await rows(wechat, StudyEntry)) == 1


async def test_a_retried_event_is_processed_once(wechat: WeChat) -> None:
    unsubscribed_at = wechat.now - 2
    assert await wechat.event(MEMBER, "unsubscribe", create_time=unsubscribed_at) == "success"
    welcome = parse_reply(await wechat.event(MEMBER, "subscribe", create_time=wechat.now))
    assert welcome["Content"] == render("welcome_back", name="张三")
    # A late retry of the unsubscribe (same sender, CreateTime, Event, no EventKey) must not
    # mark the member unreachable again.
    assert await wechat.event(MEMBER, "unsubscribe", create_time=unsubscribed_at) == "success"
    [binding] = await rows(wechat, Binding, Binding.external_id == MEMBER)
    assert binding.reachable is True


async def test_a_retried_click_gets_the_same_reply_and_one_record(wechat: WeChat) -> None:
    clicked_at = wechat.now - 1
    first = await wechat.event(MEMBER, "CLICK", key="STUDY_TODAY", create_time=clicked_at)
    await wechat.text(MEMBER, "学习 30")  # changes what a second run would answer
    second = await wechat.event(MEMBER, "CLICK", key="STUDY_TODAY", create_time=clicked_at)
    assert "今日学习：0/120 分钟" in parse_reply(first)["Content"]
    assert parse_reply(second)["Content"] == parse_reply(first)["Content"]
    clicks = await rows(wechat, ProcessedMessage, ProcessedMessage.key.contains("STUDY_TODAY"))
    assert len(clicks) == 1


# --- hostile inputs ----------------------------------------------------------------------


def study_xml(wechat: WeChat) -> str:
    return message_xml(MEMBER, "text", wechat.now, Content="学习 30", MsgId=wechat.msg_id())


async def test_bad_signature_is_refused_and_records_nothing(wechat: WeChat) -> None:
    recorded_before = await rows(wechat, ProcessedMessage)
    query = wechat.query()
    query["signature"] = sign("another-token", query["timestamp"], query["nonce"])
    response = await wechat.post(study_xml(wechat), query)
    assert response.status == 403
    assert await rows(wechat, ProcessedMessage) == recorded_before
    assert await rows(wechat, StudyEntry) == []


async def test_missing_signature_is_refused(wechat: WeChat) -> None:
    query = wechat.query()
    del query["signature"]
    response = await wechat.post(study_xml(wechat), query)
    assert response.status == 403
    assert await rows(wechat, StudyEntry) == []


async def test_old_timestamp_is_refused(wechat: WeChat) -> None:
    response = await wechat.post(study_xml(wechat), wechat.query(timestamp=wechat.now - 600))
    assert response.status == 403
    assert await rows(wechat, StudyEntry) == []


async def test_malformed_xml_is_refused(wechat: WeChat) -> None:
    response = await wechat.post("<xml><MsgType>text</MsgType><Content>学习 30</xml>")
    assert response.status == 400


async def test_body_over_one_mebibyte_is_refused(wechat: WeChat) -> None:
    body = b"<xml><Content>" + b"a" * MAX_BODY + b"</Content></xml>"
    response = await wechat.post(body)
    assert response.status == 413
    assert await rows(wechat, StudyEntry) == []


def billion_laughs() -> str:
    """Nine levels of entities, each ten of the one below: 10^9 "lol"s if ever expanded."""
    entities = ['<!ENTITY lol0 "lol">']
    for level in range(1, 10):
        entities.append(f'<!ENTITY lol{level} "{f"&lol{level - 1};" * 10}">')
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE xml [\n' + "\n".join(entities) + "\n]>\n"
        f"<xml><ToUserName>{cdata(ACCOUNT)}</ToUserName><FromUserName>{cdata(MEMBER)}"
        "</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType>"
        "<Content>&lol9;</Content><MsgId>1</MsgId></xml>"
    )


async def test_billion_laughs_is_refused_and_the_server_stays_up(wechat: WeChat) -> None:
    response = await wechat.post(billion_laughs())
    assert response.status == 400
    health = await wechat.client.get("/healthz")
    assert health.status == 200
    assert (await health.json())["status"] == "ok"


async def test_external_entity_is_refused(wechat: WeChat) -> None:
    xml = (
        '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        + study_xml(wechat).replace("学习 30", "]]>&xxe;<![CDATA[")
    )
    response = await wechat.post(xml)
    assert response.status == 400
    assert "root:" not in await response.text()


async def test_xml_without_msg_type_is_refused(wechat: WeChat) -> None:
    xml = (
        f"<xml><ToUserName>{cdata(ACCOUNT)}</ToUserName><FromUserName>{cdata(MEMBER)}"
        f"</FromUserName><CreateTime>{wechat.now}</CreateTime><Content>{cdata('学习 30')}"
        "</Content><MsgId>77</MsgId></xml>"
    )
    response = await wechat.post(xml)
    assert response.status == 400
    assert await rows(wechat, StudyEntry) == []


async def test_xml_without_sender_is_refused(wechat: WeChat) -> None:
    xml = (
        f"<xml><ToUserName>{cdata(ACCOUNT)}</ToUserName><CreateTime>{wechat.now}</CreateTime>"
        f"<MsgType>{cdata('text')}</MsgType><Content>{cdata('学习 30')}</Content>"
        "<MsgId>78</MsgId></xml>"
    )
    response = await wechat.post(xml)
    assert response.status == 400
    assert await rows(wechat, StudyEntry) == []


async def test_xml_that_is_not_a_message_is_refused(wechat: WeChat) -> None:
    response = await wechat.post("<root><MsgType>text</MsgType></root>")
    assert response.status == 400


async def test_cdata_terminator_in_content_keeps_the_reply_well_formed(wechat: WeChat) -> None:
    # `志愿` echoes the description back: the member's "]]>" lands inside the reply's CDATA.
    description = "帮扶]]><MsgType>evil</MsgType><![CDATA[老人"
    reply = await wechat.text(MEMBER, f"志愿 2 {description}")
    assert reply["ToUserName"] == MEMBER
    assert reply["MsgType"] == "text"
    assert description in reply["Content"]


# --- health ------------------------------------------------------------------------------


async def test_healthz(wechat: WeChat) -> None:
    response = await wechat.client.get("/healthz")
    assert response.status == 200
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
