"""The WeCom (企业微信) callback end to end: WeCom's official test vector, then encrypted
requests built here from the protocol (PROTOCOLS.md: `msg_signature` = sha1 of the sorted
token, timestamp, nonce and Encrypt; wechatpy.enterprise's crypto for the AES envelope with
the CorpID as ReceiveId), and the rows they leave in the database."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import xmltodict
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine
from wechatpy.enterprise.crypto import WeChatCrypto as WeComCrypto

from bot.app import create_app
from bot.appkeys import CONVERSATION
from bot.channels.wechat_envelope import parse_xml
from bot.channels.wecom import read_message, to_inbound
from bot.clock import FixedClock
from bot.messages import InboundKind, Media, Sender
from bot.settings import ConfigError, Settings, load_settings
from content.texts import render
from data.models import AuditEntry, Binding, ProcessedMessage, StudyEntry
from tests.channels.test_wechat import MEMBER, WeChat, cdata, rows, sign
from tests.channels.test_wechat import bind_member as bind_on_wechat
from tests.channels.test_wechat import start as start_wechat
from tests.conftest import SHANGHAI, make_settings, seed

AppClientFactory = Callable[[Any], Awaitable[TestClient]]

# WeCom's own sample (weworkapi_cplusplus Sample.cpp), as PROTOCOLS.md gives it.
VECTOR_TOKEN = "QDG6eK"
VECTOR_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
VECTOR_CORP = "wx5823bf96d3bd56c7"
VECTOR_URL_CHECK = {
    "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    "timestamp": "1409659589",
    "nonce": "263014780",
    "echostr": (
        "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
    ),
}
VECTOR_MESSAGE_QUERY = {
    "msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6",
    "timestamp": "1409659813",
    "nonce": "1372623149",
}
VECTOR_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3Qczc"
    "dCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLj"
    "vd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMn"
    "vw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k"
    "22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2Yoy"
    "yH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)
# Between the vector's two timestamps: both are within the 5-minute window.
VECTOR_MOMENT = dt.datetime.fromtimestamp(1409659700, SHANGHAI)

TOKEN = "wecom-test-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
CORP = "ww0123456789abcdef"
OTHER_CORP = "wwfedcba9876543210"
AGENT = 1000002
USER = "zhangsan"  # a WeCom UserId the enterprise gave 张三 (roster 1001)
MAX_BODY = 1024 * 1024


def wecom_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "wecom_corp_id": CORP,
        "wecom_agent_id": AGENT,
        "wecom_token": TOKEN,
        "wecom_aes_key": AES_KEY,
        "bind_proof": "name",
    }
    return make_settings(database_url, **(values | overrides))


def message_xml(source: str, msg_type: str, created: int, **fields: str | int) -> str:
    """A decrypted WeCom message: ToUserName is the CorpID, AgentID the app."""
    parts = [
        f"<ToUserName>{cdata(CORP)}</ToUserName>",
        f"<FromUserName>{cdata(source)}</FromUserName>",
        f"<CreateTime>{created}</CreateTime>",
        f"<MsgType>{cdata(msg_type)}</MsgType>",
    ]
    for name, value in {**fields, "AgentID": fields.get("AgentID", AGENT)}.items():
        text = str(value) if isinstance(value, int) else cdata(value)
        parts.append(f"<{name}>{text}</{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


@dataclass
class WeCom:
    """Plays WeCom against the test server: encrypts, signs and posts; opens the replies."""

    client: TestClient
    now: int
    crypto: WeComCrypto = field(default_factory=lambda: WeComCrypto(TOKEN, AES_KEY, CORP))
    _nonces: itertools.count[int] = field(default_factory=lambda: itertools.count(88_000_001))
    _msg_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(7_000_000_001))

    def msg_id(self) -> int:
        return next(self._msg_ids)

    def request(
        self,
        xml: str,
        *,
        crypto: WeComCrypto | None = None,
        timestamp: int | None = None,
        nonce: str | None = None,
    ) -> tuple[str, dict[str, str]]:
        """The body and query of a callback carrying `xml`."""
        ts, nonce = str(timestamp or self.now), nonce or str(next(self._nonces))
        encrypted = (crypto or self.crypto).encrypt_message(xml, nonce, ts)
        encrypt = xmltodict.parse(encrypted)["xml"]["Encrypt"]
        body = (
            f"<xml><ToUserName>{cdata(CORP)}</ToUserName><Encrypt>{cdata(encrypt)}</Encrypt>"
            f"<AgentID>{cdata(str(AGENT))}</AgentID></xml>"
        )
        query = {"msg_signature": sign(TOKEN, ts, nonce, encrypt), "timestamp": ts, "nonce": nonce}
        return body, query

    async def post(self, body: str | bytes, query: dict[str, str]) -> ClientResponse:
        return await self.client.post("/wecom", params=query, data=body)

    def open_reply(self, body: str) -> dict[str, Any]:
        envelope = xmltodict.parse(body)["xml"]
        ts, nonce = envelope["TimeStamp"], envelope["Nonce"]
        assert envelope["MsgSignature"] == sign(TOKEN, ts, nonce, envelope["Encrypt"])
        inner = self.crypto.decrypt_message(body, envelope["MsgSignature"], ts, nonce)
        return dict(xmltodict.parse(inner)["xml"])

    async def send(self, xml: str, **request: Any) -> str:
        """Posts `xml`; asserts 200 and returns the decrypted reply's text ("" for none)."""
        response = await self.post(*self.request(xml, **request))
        assert response.status == 200, await response.text()
        body = await response.text()
        return self.open_reply(body)["Content"] if body else ""

    async def text(self, source: str, content: str, msg_id: int | None = None) -> str:
        xml = message_xml(source, "text", self.now, Content=content, MsgId=msg_id or self.msg_id())
        return await self.send(xml)

    async def event(self, source: str, event: str, key: str = "") -> str:
        fields: dict[str, str | int] = {"Event": event, "EventKey": key}
        return await self.send(message_xml(source, "event", self.now, **fields))


async def start(aiohttp_client: AppClientFactory, settings: Settings, clock: FixedClock) -> WeCom:
    client = await aiohttp_client(create_app(settings, clock))
    await seed(client.app[CONVERSATION])
    return WeCom(client, int(clock.now().timestamp()))


@pytest.fixture
def settings(database_url: str) -> Settings:
    return wecom_settings(database_url)


@pytest.fixture
async def wecom(
    aiohttp_client: AppClientFactory, settings: Settings, clock: FixedClock, engine: AsyncEngine
) -> WeCom:
    """Member 1001 (张三) bound to USER over WeCom."""
    wecom = await start(aiohttp_client, settings, clock)
    assert "绑定成功" in await wecom.text(USER, "绑定 1001 张三")
    return wecom


# --- the official vector --------------------------------------------------------------------


@pytest.fixture
async def vector_client(
    aiohttp_client: AppClientFactory, database_url: str, engine: AsyncEngine
) -> TestClient:
    settings = make_settings(
        database_url,
        wecom_corp_id=VECTOR_CORP,
        wecom_token=VECTOR_TOKEN,
        wecom_aes_key=VECTOR_KEY,
        wecom_agent_id=218,
    )
    return await aiohttp_client(create_app(settings, FixedClock(VECTOR_MOMENT)))


async def test_official_vector_url_check_answers_the_plaintext_alone(
    vector_client: TestClient,
) -> None:
    response = await vector_client.get("/wecom", params=VECTOR_URL_CHECK)

    assert response.status == 200
    assert await response.read() == b"1616140317555161061"


async def test_official_vector_url_check_with_another_signature_is_refused(
    vector_client: TestClient,
) -> None:
    forged = VECTOR_URL_CHECK | {"msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd4"}

    response = await vector_client.get("/wecom", params=forged)

    assert response.status == 403
    assert b"1616140317555161061" not in await response.read()


async def test_official_vector_message_is_read_and_answered(vector_client: TestClient) -> None:
    body = (
        f"<xml><ToUserName>{cdata(VECTOR_CORP)}</ToUserName>"
        f"<Encrypt>{cdata(VECTOR_ENCRYPT)}</Encrypt><AgentID>{cdata('218')}</AgentID></xml>"
    )

    response = await vector_client.post("/wecom", params=VECTOR_MESSAGE_QUERY, data=body)

    assert response.status == 200
    envelope = xmltodict.parse(await response.text())["xml"]
    crypto = WeComCrypto(VECTOR_TOKEN, VECTOR_KEY, VECTOR_CORP)
    inner = crypto.decrypt_message(
        await response.text(), envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"]
    )
    reply = xmltodict.parse(inner)["xml"]
    # `hello` from `mycreate`, nobody bound: the bot asks to bind, to that user, as app 218.
    assert reply["ToUserName"] == "mycreate"
    assert reply["FromUserName"] == VECTOR_CORP
    assert reply["AgentID"] == "218"
    assert reply["Content"] == render("bind_prompt", proof="code")
    seen = await rows_of(vector_client, ProcessedMessage)
    assert [(row.channel, row.key) for row in seen] == [("wecom", "4561255354251345929")]


async def rows_of(client: TestClient, model: type[Any], *where: Any) -> list[Any]:
    return await rows(WeChat(client, 0), model, *where)


# --- members over WeCom ------------------------------------------------------------------------


async def test_bind_and_check_in_over_wecom_then_wechat_sees_the_same_day(
    aiohttp_client: AppClientFactory, database_url: str, clock: FixedClock, engine: AsyncEngine
) -> None:
    client = await aiohttp_client(create_app(wecom_settings(database_url), clock))
    await seed(client.app[CONVERSATION])
    wecom = WeCom(client, int(clock.now().timestamp()))
    wechat = WeChat(client, wecom.now)

    assert "绑定成功" in await wecom.text(USER, "绑定 1001 张三")
    recorded = await wecom.text(USER, "学习 30")
    await bind_on_wechat(wechat)
    today = await wechat.text(MEMBER, "今日")

    assert "已记录 30 分钟" in recorded
    assert "今日学习：30/120 分钟" in today["Content"]
    bindings = await rows(wechat, Binding)
    assert sorted(b.channel for b in bindings) == ["wechat", "wecom"]
    assert len({b.member_id for b in bindings}) == 1


async def test_a_retry_is_answered_identically_and_counted_once(wecom: WeCom) -> None:
    xml = message_xml(USER, "text", wecom.now, Content="学习 30", MsgId=4242)

    first = await wecom.send(xml)
    again = await wecom.send(xml)  # WeCom's retry: a new nonce, the same MsgId

    assert "已记录 30 分钟" in first
    assert again == first
    assert len(await rows_of(wecom.client, StudyEntry)) == 1


async def test_a_replayed_request_is_answered_with_the_first_reply(wecom: WeCom) -> None:
    body, query = wecom.request(message_xml(USER, "text", wecom.now, Content="学习 30", MsgId=7))

    first = await wecom.post(body, query)
    second = await wecom.post(body, query)

    assert first.status == second.status == 200
    assert wecom.open_reply(await second.text()) == wecom.open_reply(await first.text())
    assert len(await rows_of(wecom.client, StudyEntry)) == 1


async def test_menu_click_runs_the_command_of_its_key(wecom: WeCom) -> None:
    reply = await wecom.event(USER, "click", "STUDY_TODAY")

    assert reply.startswith("今日学习：0/120 分钟")


async def test_voice_with_recognition_is_read_as_text(wecom: WeCom) -> None:
    xml = message_xml(
        USER, "voice", wecom.now, MediaId="m1", Format="amr", Recognition="学习30。", MsgId=91
    )

    assert "已记录 30 分钟" in await wecom.send(xml)


async def test_entering_the_app_prompts_the_unbound_and_is_silent_for_members(
    wecom: WeCom,
) -> None:
    assert await wecom.event("lisi", "enter_agent") == render("bind_prompt", proof="name")
    assert await wecom.event(USER, "enter_agent") == ""


async def test_subscribe_welcomes_a_member_back(wecom: WeCom) -> None:
    assert await wecom.event(USER, "subscribe") == render("welcome_back", name="张三")


# --- autobind -------------------------------------------------------------------------------


async def test_autobind_binds_a_userid_equal_to_a_roster_id_and_audits_it(
    aiohttp_client: AppClientFactory, database_url: str, clock: FixedClock, engine: AsyncEngine
) -> None:
    wecom = await start(aiohttp_client, wecom_settings(database_url, wecom_autobind=True), clock)

    reply = await wecom.text("1001", "学习 30")

    assert reply.startswith("已按企业微信账号为您绑定身份：张三（第一党支部）。")
    assert "已记录 30 分钟" in reply
    [binding] = await rows_of(wecom.client, Binding)
    assert (binding.channel, binding.external_id) == ("wecom", "1001")
    [audit] = await rows_of(wecom.client, AuditEntry, AuditEntry.action == "member.bind")
    assert audit.object_id == "1001"
    assert '"proof": "wecom-userid"' in audit.after


async def test_autobind_never_binds_staff_nor_unknown_ids(
    aiohttp_client: AppClientFactory, database_url: str, clock: FixedClock, engine: AsyncEngine
) -> None:
    wecom = await start(aiohttp_client, wecom_settings(database_url, wecom_autobind=True), clock)

    secretary = await wecom.text("1003", "学习 30")  # 王芳, a secretary: a code, always
    stranger = await wecom.text("7777", "学习 30")

    assert secretary == stranger == render("bind_prompt", proof="name")
    assert await rows_of(wecom.client, Binding) == []


async def test_without_autobind_a_roster_id_is_not_bound(wecom: WeCom) -> None:
    reply = await wecom.text("1002", "学习 30")

    assert reply == render("bind_prompt", proof="name")
    assert [b.external_id for b in await rows_of(wecom.client, Binding)] == [USER]


# --- refused, nothing changed -----------------------------------------------------------------


def _forged(wecom: WeCom) -> tuple[str | bytes, dict[str, str]]:
    body, query = wecom.request(message_xml(USER, "text", wecom.now, Content="学习 30", MsgId=1))
    signature = query["msg_signature"]
    return body, query | {"msg_signature": signature[:-1] + ("0" if signature[-1] != "0" else "1")}


def _stale(wecom: WeCom) -> tuple[str | bytes, dict[str, str]]:
    xml = message_xml(USER, "text", wecom.now, Content="学习 30", MsgId=2)
    return wecom.request(xml, timestamp=wecom.now - 301)


def _foreign_corp(wecom: WeCom) -> tuple[str | bytes, dict[str, str]]:
    xml = message_xml(USER, "text", wecom.now, Content="学习 30", MsgId=3)
    return wecom.request(xml, crypto=WeComCrypto(TOKEN, AES_KEY, OTHER_CORP))


def _other_app(wecom: WeCom) -> tuple[str | bytes, dict[str, str]]:
    xml = message_xml(USER, "text", wecom.now, Content="学习 30", MsgId=4, AgentID=1000009)
    return wecom.request(xml)


def _malformed_outer(wecom: WeCom) -> tuple[str | bytes, dict[str, str]]:
    body, query = wecom.request(message_xml(USER, "text", wecom.now, Content="学习 30", MsgId=5))
    return body.replace("</xml>", ""), query


def _malformed_inner(wecom: WeCom) -> tuple[str | bytes, dict[str, str]]:
    return wecom.request("<xml><FromUserName>zhangsan</FromUserName><xml>")


def _dtd_outer(wecom: WeCom) -> tuple[str | bytes, dict[str, str]]:
    body, query = wecom.request(message_xml(USER, "text", wecom.now, Content="学习 30", MsgId=6))
    return '<!DOCTYPE xml [<!ENTITY a "学习 30">]>' + body, query


def _dtd_inner(wecom: WeCom) -> tuple[str | bytes, dict[str, str]]:
    xml = message_xml(USER, "text", wecom.now, Content="&a;", MsgId=7)
    return wecom.request('<!DOCTYPE xml [<!ENTITY a "学习 30">]>' + xml)


def _oversize(wecom: WeCom) -> tuple[str | bytes, dict[str, str]]:
    body, query = wecom.request(message_xml(USER, "text", wecom.now, Content="学习 30", MsgId=8))
    return body.replace("</xml>", " " * MAX_BODY + "</xml>"), query


def _no_signature(wecom: WeCom) -> tuple[str | bytes, dict[str, str]]:
    body, query = wecom.request(message_xml(USER, "text", wecom.now, Content="学习 30", MsgId=9))
    del query["msg_signature"]
    return body, query


@pytest.mark.parametrize(
    ("build", "status"),
    [
        (_forged, 403),
        (_no_signature, 403),
        (_stale, 403),
        (_foreign_corp, 400),
        (_other_app, 403),
        (_malformed_outer, 400),
        (_malformed_inner, 400),
        (_dtd_outer, 400),
        (_dtd_inner, 400),
        (_oversize, 413),
    ],
)
async def test_bad_callbacks_are_refused_and_change_nothing(
    wecom: WeCom, build: Callable[[WeCom], tuple[str | bytes, dict[str, str]]], status: int
) -> None:
    before = await rows_of(wecom.client, ProcessedMessage)

    response = await wecom.post(*build(wecom))

    assert response.status == status
    assert await rows_of(wecom.client, StudyEntry) == []
    assert len(await rows_of(wecom.client, ProcessedMessage)) == len(before)


async def test_a_seen_nonce_with_another_message_is_refused(wecom: WeCom) -> None:
    first = message_xml(USER, "text", wecom.now, Content="学习 30", MsgId=11)
    second = message_xml(USER, "text", wecom.now, Content="学习 60", MsgId=12)
    assert "已记录 30 分钟" in await wecom.send(first, nonce="5150")

    response = await wecom.post(*wecom.request(second, nonce="5150"))

    assert response.status == 403
    assert [entry.minutes for entry in await rows_of(wecom.client, StudyEntry)] == [30]


async def test_url_check_refuses_a_stale_timestamp(wecom: WeCom) -> None:
    ts, nonce = str(wecom.now - 301), "1"
    echostr = xmltodict.parse(wecom.crypto.encrypt_message("<xml/>", nonce, ts))["xml"]["Encrypt"]
    query = {"msg_signature": sign(TOKEN, ts, nonce, echostr), "timestamp": ts, "nonce": nonce}

    response = await wecom.client.get("/wecom", params=query | {"echostr": echostr})

    assert response.status == 403


async def test_wechat_alone_has_no_wecom_route(
    aiohttp_client: AppClientFactory, database_url: str, clock: FixedClock, engine: AsyncEngine
) -> None:
    wechat = await start_wechat(aiohttp_client, make_settings(database_url), clock)

    response = await wechat.client.get("/wecom", params=VECTOR_URL_CHECK)

    assert response.status == 404


async def test_a_retry_reaching_another_process_is_counted_once(
    aiohttp_client: AppClientFactory,
    settings: Settings,
    clock: FixedClock,
    engine: AsyncEngine,
    wecom: WeCom,
) -> None:
    other_client = await aiohttp_client(create_app(settings, clock))
    other = WeCom(other_client, wecom.now, _nonces=itertools.count(99_000_001))
    xml = message_xml(USER, "text", wecom.now, Content="学习 30", MsgId=5150)

    first = await wecom.send(xml)
    again = await other.send(xml)  # WeCom's retry, load-balanced to the second server

    assert again == first
    assert len(await rows_of(wecom.client, StudyEntry)) == 1


# --- translation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("msg_type", "fields", "media"),
    [
        ("image", {"PicUrl": "https://p.qpic.cn/x", "MediaId": "img-1"}, Media("image", "img-1")),
        ("file", {"MediaId": "file-1", "Title": "心得.docx"}, Media("file", "file-1")),
    ],
)
def test_images_and_files_become_media_from_the_wecom_user(
    clock: FixedClock, msg_type: str, fields: dict[str, str], media: Media
) -> None:
    xml = message_xml(USER, msg_type, 1409659813, MsgId=1, **fields)

    inbound = to_inbound(read_message(parse_xml(xml), xml), clock, {}, vouched=False)

    assert inbound.sender == Sender("wecom", USER)
    assert (inbound.kind, inbound.media, inbound.window) == (InboundKind.MEDIA, (media,), None)


def test_events_are_keyed_by_sender_time_event_and_key(clock: FixedClock) -> None:
    xml = message_xml(USER, "event", 1409659813, Event="click", EventKey="RANKING")

    inbound = to_inbound(read_message(parse_xml(xml), xml), clock, {"RANKING": "排行"}, True)

    assert (inbound.key, inbound.text, inbound.vouched) == (
        f"{USER}:1409659813:click:RANKING",
        "排行",
        True,
    )


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["wecom_corp_id", "wecom_token", "wecom_aes_key"])
def test_a_half_configured_wecom_stops_the_server_naming_what_is_missing(
    sqlite_url: str, missing: str
) -> None:
    settings = wecom_settings(sqlite_url, wechat_token=None, **{missing: None})

    with pytest.raises(ConfigError, match=f"QIYI_{missing.upper()} is not set"):
        create_app(settings)


def test_wecom_alone_is_a_channel(sqlite_url: str) -> None:
    app = create_app(wecom_settings(sqlite_url, wechat_token=None), background=False)

    paths = {resource.canonical for resource in app.router.resources()}
    assert "/wecom" in paths
    assert "/wechat" not in paths


@pytest.mark.usefixtures("isolated_cli")  # no .env, no QIYI_ variables from the shell
def test_an_aes_key_of_another_length_is_refused(sqlite_url: str) -> None:
    with pytest.raises(ConfigError, match="QIYI_WECOM_AES_KEY"):
        load_settings(database_url=sqlite_url, wecom_aes_key=AES_KEY[:-1])


async def test_unbinding_wecom_by_its_chinese_name(wecom: WeCom) -> None:
    reply = await wecom.text(USER, "解绑 企业微信")

    assert reply == "已解除您在企业微信上的绑定。"
    assert await rows_of(wecom.client, Binding) == []
