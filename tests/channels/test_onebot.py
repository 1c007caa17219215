"""QQ through OneBot v11 end to end: signed event POSTs in, quick-operation JSON out, and pushes
out through a fake OneBot HTTP API (tests/fakes/onebot.py).

Events are built here from the protocol (PROTOCOLS.md, "QQ through OneBot v11"), and signed
with an HMAC computed here, not with the product's helper.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import itertools
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from typer.testing import CliRunner

from bot.app import create_app
from bot.appkeys import CONVERSATION, ENGINE, SETTINGS
from bot.channels.onebot import signature
from bot.channels.onebot_api import OneBotApi
from bot.channels.onebot_message import Content, parse_cq, read
from bot.cli import app as cli_app
from bot.clock import FixedClock
from bot.dispatcher import Dispatcher
from bot.messages import Inbound, InboundKind, Media, Sender
from bot.pushes import enqueue_article, enqueue_reminders
from content.texts import render
from data import audit, groups, members
from data.db import session_factory, transaction
from data.models import (
    Binding,
    DeliveryAttempt,
    GroupPost,
    Member,
    OutboxItem,
    ProcessedMessage,
    PushKind,
    StudyEntry,
    VolunteerEntry,
)
from tests.conftest import make_settings, seed
from tests.fakes.onebot import SEND_GROUP, SEND_PRIVATE, FakeOneBot

AppClientFactory = Callable[..., Awaitable[TestClient]]
AppServerFactory = Callable[..., Awaitable[TestServer]]

SECRET = "some-secret"
ACCESS_TOKEN = "tok"
SELF_ID = 10001000  # the bot's QQ number
MEMBER_QQ = 12345678  # bound to roster member 1001 (张三, 第一党支部)
OTHER_QQ = 22334455  # bound to roster member 2001 (赵强, 第二党支部) in the push tests
STRANGER_QQ = 99887766  # bound to nobody
GROUP = 123456  # the 第一党支部's QQ group

# PROTOCOLS.md's vector: secret `some-secret` and these exact bytes.
VECTOR_BODY = (
    b'{"time":1515204254,"self_id":10001000,"post_type":"message","message_type":"private",'
    b'"sub_type":"friend","message_id":12,"user_id":12345678,"message":"hello",'
    b'"raw_message":"hello","font":456,"sender":{"nickname":"x","sex":"male","age":18}}'
)
VECTOR_SIGNATURE = "sha1=99d87b7cf47d903ada67ef657fe3232f45f1280e"


def hmac_signature(secret: str, body: bytes) -> str:
    """`X-Signature` computed from the protocol: sha1=<hex HMAC-SHA1(secret, raw body)>."""
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def encode(event: dict[str, Any]) -> bytes:
    """The body as implementations post it: UTF-8 JSON, non-ASCII text unescaped."""
    return json.dumps(event, ensure_ascii=False).encode()


def cq_escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("[", "&#91;").replace("]", "&#93;")


def raw_message(message: str | list[dict[str, Any]]) -> str:
    """The CQ-code form of a message, as implementations put in `raw_message`."""
    if isinstance(message, str):
        return message
    parts: list[str] = []
    for segment in message:
        if segment["type"] == "text":
            parts.append(cq_escape_text(segment["data"]["text"]))
        else:
            params = "".join(f",{k}={v}" for k, v in segment["data"].items())
            parts.append(f"[CQ:{segment['type']}{params}]")
    return "".join(parts)


def text_segment(text: str) -> dict[str, Any]:
    return {"type": "text", "data": {"text": text}}


def at_segment(qq: int) -> dict[str, Any]:
    return {"type": "at", "data": {"qq": str(qq)}}


@dataclass
class OneBot:
    """Plays the OneBot implementation against the test server: builds, signs and posts."""

    client: TestClient
    fake: FakeOneBot
    secret: str = SECRET
    _message_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def app(self) -> Any:
        return self.client.app

    def message_id(self) -> int:
        return next(self._message_ids)

    def event(
        self,
        user_id: int,
        message: str | list[dict[str, Any]],
        *,
        group_id: int | None = None,
        message_id: int | None = None,
    ) -> dict[str, Any]:
        """A message event; private unless `group_id` is given."""
        event: dict[str, Any] = {
            "time": int(self.now().timestamp()),
            "self_id": SELF_ID,
            "post_type": "message",
            "message_type": "private" if group_id is None else "group",
            "sub_type": "friend" if group_id is None else "normal",
            "message_id": message_id if message_id is not None else self.message_id(),
            "user_id": user_id,
            "message": message,
            "raw_message": raw_message(message),
            "font": 0,
            "sender": {"user_id": user_id, "nickname": "member", "sex": "unknown", "age": 0},
        }
        if group_id is not None:
            event["group_id"] = group_id
            event["anonymous"] = None
            event["sender"]["role"] = "member"
        return event

    def now(self) -> dt.datetime:
        return self.app[CONVERSATION].clock.now()

    async def post(
        self,
        event: dict[str, Any] | bytes,
        *,
        secret: str | None = None,
        sign: bool = True,
        headers: dict[str, str] | None = None,
    ) -> ClientResponse:
        body = event if isinstance(event, bytes) else encode(event)
        sent = {"Content-Type": "application/json", "X-Self-ID": str(SELF_ID)}
        if sign:
            sent["X-Signature"] = hmac_signature(secret or self.secret, body)
        sent.update(headers or {})
        return await self.client.post("/onebot", data=body, headers=sent)

    async def say(
        self,
        user_id: int,
        message: str | list[dict[str, Any]],
        *,
        group_id: int | None = None,
        message_id: int | None = None,
    ) -> dict[str, Any]:
        """Posts a message event; asserts a 200 JSON quick operation and returns it."""
        event = self.event(user_id, message, group_id=group_id, message_id=message_id)
        response = await self.post(event)
        assert response.status == 200, (response.status, await response.text())
        assert response.content_type == "application/json"
        answer: dict[str, Any] = await response.json()
        return answer

    async def silent(
        self, user_id: int, message: str | list[dict[str, Any]], *, group_id: int | None = None
    ) -> None:
        """Posts a message event; asserts the empty 204 (no reply)."""
        response = await self.post(self.event(user_id, message, group_id=group_id))
        assert response.status == 204, (response.status, await response.text())
        assert await response.read() == b""

    async def bind(self, user_id: int, roster_id: str, name: str) -> None:
        answer = await self.say(user_id, [text_segment(f"绑定 {roster_id} {name}")])
        assert "绑定成功" in answer["reply"], answer


async def rows(onebot: OneBot, model: type[Any], *where: Any) -> list[Any]:
    async with AsyncSession(onebot.app[ENGINE]) as session:
        return list((await session.exec(select(model).where(*where))).all())


async def start(
    aiohttp_client: AppClientFactory,
    aiohttp_server: AppServerFactory,
    database_url: str,
    clock: FixedClock,
    *,
    background: bool = True,
    **overrides: object,
) -> OneBot:
    fake = FakeOneBot(access_token=ACCESS_TOKEN)
    server = await aiohttp_server(fake.app())
    values: dict[str, object] = {
        "wechat_token": None,
        "onebot_secret": SECRET,
        "onebot_api_url": str(server.make_url("")),
        "onebot_access_token": ACCESS_TOKEN,
        "onebot_send_interval_seconds": 0,
        "delivery_rate": 1000,
        "bind_proof": "name",  # members bind with `绑定 工号 姓名` here
    }
    values.update(overrides)
    settings = make_settings(database_url, **values)
    client = await aiohttp_client(create_app(settings, clock, background=background))
    await seed(client.app[CONVERSATION])
    return OneBot(client, fake)


@pytest.fixture
async def onebot(
    aiohttp_client: AppClientFactory,
    aiohttp_server: AppServerFactory,
    database_url: str,
    clock: FixedClock,
    engine: AsyncEngine,  # a clean, migrated database (PostgreSQL is reset)
) -> OneBot:
    """The server with /onebot mounted and its background dispatcher running."""
    return await start(aiohttp_client, aiohttp_server, database_url, clock)


@pytest.fixture
async def quiet_onebot(
    aiohttp_client: AppClientFactory,
    aiohttp_server: AppServerFactory,
    database_url: str,
    clock: FixedClock,
    engine: AsyncEngine,
) -> OneBot:
    """The server without its background dispatcher: the push tests run one themselves."""
    return await start(aiohttp_client, aiohttp_server, database_url, clock, background=False)


# --- signatures --------------------------------------------------------------------------


def test_signature_matches_the_protocol_vector() -> None:
    assert signature(SECRET, VECTOR_BODY) == VECTOR_SIGNATURE
    assert hmac_signature(SECRET, VECTOR_BODY) == VECTOR_SIGNATURE  # this file's own helper
    assert signature("another-secret", VECTOR_BODY) != VECTOR_SIGNATURE
    assert signature(SECRET, VECTOR_BODY + b" ") != VECTOR_SIGNATURE


async def test_the_vector_event_is_accepted_as_signed(onebot: OneBot, clock: FixedClock) -> None:
    # The vector's event was sent at its `time`: the server's clock is set to that moment.
    clock.set(dt.datetime.fromtimestamp(1515204254, dt.UTC))
    response = await onebot.post(VECTOR_BODY, headers={"X-Signature": VECTOR_SIGNATURE})
    assert response.status == 200
    # A stranger says "hello": the conversation asks them to bind.
    assert (await response.json()) == {"reply": render("bind_prompt", proof="name")}


async def test_wrongly_signed_events_are_refused_and_nothing_is_processed(
    onebot: OneBot,
) -> None:
    await onebot.bind(MEMBER_QQ, "1001", "张三")
    recorded_before = await rows(onebot, ProcessedMessage)
    event = onebot.event(MEMBER_QQ, [text_segment("学习 30")])
    body = encode(event)
    assert "学习 30".encode() in body

    wrong_secret = await onebot.post(body, secret="another-secret")
    unsigned = await onebot.post(body, sign=False)
    altered = await onebot.post(
        body.replace("学习 30".encode(), "学习 90".encode()),
        headers={"X-Signature": hmac_signature(SECRET, body)},
    )
    bare_hex = await onebot.post(
        body, headers={"X-Signature": hmac_signature(SECRET, body).removeprefix("sha1=")}
    )

    for response in (wrong_secret, unsigned, altered, bare_hex):
        assert response.status == 403
        assert "30/120" not in await response.text()
    assert await rows(onebot, ProcessedMessage) == recorded_before
    assert await rows(onebot, StudyEntry) == []


# --- private chats -----------------------------------------------------------------------


async def test_private_bind_then_study_with_array_segments(onebot: OneBot) -> None:
    bound = await onebot.say(MEMBER_QQ, [text_segment("绑定 1001 张三")])
    assert set(bound) == {"reply"}  # no at_sender in a private chat
    assert "绑定成功" in bound["reply"]
    [binding] = await rows(onebot, Binding)
    assert (binding.channel, binding.external_id) == ("qq", str(MEMBER_QQ))

    studied = await onebot.say(MEMBER_QQ, [text_segment("学习 30")])
    assert set(studied) == {"reply"}
    assert "30/120" in studied["reply"]
    assert [entry.minutes for entry in await rows(onebot, StudyEntry)] == [30]


async def test_private_message_as_a_cq_string(onebot: OneBot) -> None:
    await onebot.bind(MEMBER_QQ, "1001", "张三")
    answer = await onebot.say(MEMBER_QQ, "学习 30")
    assert "30/120" in answer["reply"]


async def test_private_image_gets_the_unsupported_text(onebot: OneBot) -> None:
    await onebot.bind(MEMBER_QQ, "1001", "张三")
    image = {"type": "image", "data": {"file": "a.jpg", "url": "http://127.0.0.1/a.jpg"}}
    answer = await onebot.say(MEMBER_QQ, [image])
    assert answer == {"reply": render("unsupported")}


async def test_same_message_id_twice_counts_once_with_the_same_reply(onebot: OneBot) -> None:
    await onebot.bind(MEMBER_QQ, "1001", "张三")
    message_id = onebot.message_id()
    first = await onebot.say(MEMBER_QQ, [text_segment("学习 30")], message_id=message_id)
    second = await onebot.say(MEMBER_QQ, [text_segment("学习 30")], message_id=message_id)
    assert "30/120" in first["reply"]
    assert second == first
    assert [entry.minutes for entry in await rows(onebot, StudyEntry)] == [30]
    # A new message id is a new message.
    third = await onebot.say(MEMBER_QQ, [text_segment("学习 30")])
    assert "60/120" in third["reply"]


async def test_the_bots_own_message_is_ignored(onebot: OneBot) -> None:
    recorded_before = await rows(onebot, ProcessedMessage)
    await onebot.silent(SELF_ID, [text_segment("学习 30")])
    await onebot.silent(SELF_ID, f"[CQ:at,qq={SELF_ID}] 学习 30", group_id=GROUP)
    assert await rows(onebot, ProcessedMessage) == recorded_before


# --- group chats -------------------------------------------------------------------------


async def test_group_cq_string_with_at_is_answered_with_at_sender(onebot: OneBot) -> None:
    await onebot.bind(MEMBER_QQ, "1001", "张三")
    answer = await onebot.say(MEMBER_QQ, f"[CQ:at,qq={SELF_ID}] 学习 30", group_id=GROUP)
    assert answer["at_sender"] is True
    assert "30/120" in answer["reply"]
    assert [entry.minutes for entry in await rows(onebot, StudyEntry)] == [30]


async def test_group_array_segments_with_at_are_answered(onebot: OneBot) -> None:
    await onebot.bind(MEMBER_QQ, "1001", "张三")
    message = [at_segment(SELF_ID), text_segment(" 学习 30")]
    answer = await onebot.say(MEMBER_QQ, message, group_id=GROUP)
    assert answer["at_sender"] is True
    assert "30/120" in answer["reply"]


async def test_group_chatter_not_addressed_to_the_bot_is_ignored(onebot: OneBot) -> None:
    await onebot.bind(MEMBER_QQ, "1001", "张三")
    recorded_before = await rows(onebot, ProcessedMessage)
    await onebot.silent(MEMBER_QQ, [text_segment("大家好")], group_id=GROUP)
    await onebot.silent(MEMBER_QQ, "大家好", group_id=GROUP)
    # @-mentioning someone else is not addressing the bot.
    await onebot.silent(MEMBER_QQ, f"[CQ:at,qq={OTHER_QQ}] 大家好", group_id=GROUP)
    assert await rows(onebot, ProcessedMessage) == recorded_before


async def test_group_command_without_at_is_answered(onebot: OneBot) -> None:
    await onebot.bind(MEMBER_QQ, "1001", "张三")
    answer = await onebot.say(MEMBER_QQ, [text_segment("学习 30")], group_id=GROUP)
    assert answer["at_sender"] is True
    assert "30/120" in answer["reply"]
    assert [entry.minutes for entry in await rows(onebot, StudyEntry)] == [30]


async def test_group_commands_off_needs_the_at(
    aiohttp_client: AppClientFactory,
    aiohttp_server: AppServerFactory,
    database_url: str,
    clock: FixedClock,
    engine: AsyncEngine,
) -> None:
    onebot = await start(
        aiohttp_client, aiohttp_server, database_url, clock, onebot_group_commands=False
    )
    await onebot.bind(MEMBER_QQ, "1001", "张三")
    await onebot.silent(MEMBER_QQ, [text_segment("学习 30")], group_id=GROUP)
    assert await rows(onebot, StudyEntry) == []
    answer = await onebot.say(MEMBER_QQ, f"[CQ:at,qq={SELF_ID}] 学习 30", group_id=GROUP)
    assert answer["at_sender"] is True
    assert "30/120" in answer["reply"]


async def test_unbound_group_user_gets_the_bind_prompt_with_at_sender(onebot: OneBot) -> None:
    answer = await onebot.say(STRANGER_QQ, f"[CQ:at,qq={SELF_ID}] 学习 30", group_id=GROUP)
    assert answer == {"reply": render("bind_prompt", proof="name"), "at_sender": True}
    assert await rows(onebot, StudyEntry) == []


async def test_cq_escapes_are_decoded_end_to_end(onebot: OneBot) -> None:
    await onebot.bind(MEMBER_QQ, "1001", "张三")
    description = "帮扶[老人]&送餐"
    message = f"[CQ:at,qq={SELF_ID}] 志愿 2 {cq_escape_text(description)}"
    assert "&#91;" in message and "&amp;" in message  # the implementation escaped them
    answer = await onebot.say(MEMBER_QQ, message, group_id=GROUP)
    assert description in answer["reply"]
    [entry] = await rows(onebot, VolunteerEntry)
    assert entry.description == description


async def test_a_typed_cq_code_is_text_not_a_mention(onebot: OneBot) -> None:
    # A member who types "[CQ:at,qq=<bot>]" gets it escaped by the implementation: it must
    # not count as addressing the bot.
    await onebot.bind(MEMBER_QQ, "1001", "张三")
    recorded_before = await rows(onebot, ProcessedMessage)
    typed = cq_escape_text(f"[CQ:at,qq={SELF_ID}]") + " 大家好"
    await onebot.silent(MEMBER_QQ, typed, group_id=GROUP)
    assert await rows(onebot, ProcessedMessage) == recorded_before


# --- other post types --------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        {"post_type": "meta_event", "meta_event_type": "heartbeat", "interval": 5000,
         "status": {"online": True, "good": True}},
        {"post_type": "meta_event", "meta_event_type": "lifecycle", "sub_type": "connect"},
        {"post_type": "notice", "notice_type": "group_increase", "sub_type": "approve",
         "group_id": GROUP, "operator_id": 1, "user_id": STRANGER_QQ},
        {"post_type": "request", "request_type": "friend", "user_id": STRANGER_QQ,
         "comment": "学习 30", "flag": "flag-1"},
    ],
    ids=["heartbeat", "lifecycle", "notice", "request"],
)  # fmt: skip
async def test_other_post_types_get_204(onebot: OneBot, event: dict[str, Any]) -> None:
    recorded_before = await rows(onebot, ProcessedMessage)
    now = int(onebot.now().timestamp())
    response = await onebot.post({"time": now, "self_id": SELF_ID, **event})
    assert response.status == 204
    assert await response.read() == b""
    assert await rows(onebot, ProcessedMessage) == recorded_before


async def test_unsigned_heartbeat_is_refused_too(onebot: OneBot) -> None:
    event = {"time": 1, "self_id": SELF_ID, "post_type": "meta_event", "meta_event_type": "x"}
    response = await onebot.post(event, sign=False)
    assert response.status == 403


# --- one member, two channels ------------------------------------------------------------


async def test_a_member_on_wechat_and_qq_sees_one_total(onebot: OneBot) -> None:
    conversation = onebot.app[CONVERSATION]
    wechat = Sender("wechat", "oMember1001xxxxxxxxxxxxxxxxx")
    async with transaction(conversation.sessions) as session:
        member = await members.member_by_roster_id(session, "1001")
        assert member is not None
        await members.bind(session, wechat, member, conversation.clock.now())
    await onebot.bind(MEMBER_QQ, "1001", "张三")

    def on_wechat(text: str, key: str) -> Inbound:
        return Inbound(wechat, key, InboundKind.TEXT, conversation.clock.now(), text)

    by_wechat = await conversation.respond(on_wechat("学习 30", "wx-1"))
    assert "30/120" in by_wechat
    by_qq = await onebot.say(MEMBER_QQ, [text_segment("学习 30")])
    assert "60/120" in by_qq["reply"]

    qq_today = await onebot.say(MEMBER_QQ, "今日")
    wechat_today = await conversation.respond(on_wechat("今日", "wx-2"))
    assert "今日学习：60/120 分钟" in qq_today["reply"]
    assert "今日学习：60/120 分钟" in wechat_today
    entries = await rows(onebot, StudyEntry)
    assert len(entries) == 2
    assert len({entry.member_id for entry in entries}) == 1


# --- message parsing (unit) --------------------------------------------------------------


def test_parse_cq_splits_codes_and_text() -> None:
    assert parse_cq(f"[CQ:at,qq={SELF_ID}] 学习 30") == [
        {"type": "at", "data": {"qq": str(SELF_ID)}},
        {"type": "text", "data": {"text": " 学习 30"}},
    ]
    assert parse_cq("学习 30[CQ:face,id=178]") == [
        {"type": "text", "data": {"text": "学习 30"}},
        {"type": "face", "data": {"id": "178"}},
    ]
    assert parse_cq("") == []


def test_parse_cq_decodes_the_escapes() -> None:
    # In text: &amp; &#91; &#93;. In parameters also &#44; (the comma).
    assert parse_cq("&#91;通知&#93; A&amp;B") == [{"type": "text", "data": {"text": "[通知] A&B"}}]
    code = "[CQ:image,file=a&#44;b&#91;1&#93;.jpg,url=http://127.0.0.1/x?a=1&amp;b=2]"
    assert parse_cq(code) == [
        {"type": "image", "data": {"file": "a,b[1].jpg", "url": "http://127.0.0.1/x?a=1&b=2"}}
    ]


def test_parse_cq_decodes_once() -> None:
    # "&amp;#91;" is an escaped "&" followed by "#91;": it reads "&#91;", not "[".
    assert parse_cq("&amp;#91;") == [{"type": "text", "data": {"text": "&#91;"}}]
    assert parse_cq("[CQ:x,v=&amp;#44;]") == [{"type": "x", "data": {"v": "&#44;"}}]


def test_an_escaped_cq_code_is_text() -> None:
    typed = f"&#91;CQ:at,qq={SELF_ID}&#93; hi"
    assert parse_cq(typed) == [{"type": "text", "data": {"text": f"[CQ:at,qq={SELF_ID}] hi"}}]
    assert read(typed).mentions == frozenset()


def test_read_a_cq_string() -> None:
    content = read(f"[CQ:at,qq={SELF_ID}]  学习 30 [CQ:image,file=a.jpg,url=http://h/a.jpg]")
    expected_media = (Media("image", "http://h/a.jpg"),)
    assert content == Content("学习 30", frozenset({str(SELF_ID)}), expected_media)


def test_read_array_segments() -> None:
    message = [
        {"type": "at", "data": {"qq": SELF_ID}},  # some implementations send numbers
        text_segment(" 志愿 2 "),
        {"type": "face", "data": {"id": "1"}},
        text_segment("帮扶老人 "),
        {"type": "image", "data": {"file": "b.jpg"}},
    ]
    expected_media = (Media("image", "b.jpg"),)
    assert read(message) == Content("志愿 2 帮扶老人", frozenset({str(SELF_ID)}), expected_media)


def test_array_text_is_not_unescaped() -> None:
    # Segments carry raw text: "&#91;" typed by a member stays as typed.
    assert read([text_segment("&#91;x&#93; &amp;")]).text == "&#91;x&#93; &amp;"


def test_read_refuses_other_shapes() -> None:
    with pytest.raises(ValueError):
        read(12345)
    with pytest.raises(ValueError):
        read({"type": "text", "data": {"text": "学习 30"}})


# --- pushes through the OneBot HTTP API --------------------------------------------------


@dataclass
class Pushing:
    onebot: OneBot
    dispatcher: Dispatcher
    clock: FixedClock

    @property
    def fake(self) -> FakeOneBot:
        return self.onebot.fake


@pytest.fixture
async def pushing(quiet_onebot: OneBot, clock: FixedClock) -> AsyncIterator[Pushing]:
    """A dispatcher sending through the fake OneBot API, run by hand with the fixed clock."""
    app = quiet_onebot.app
    settings = app[SETTINGS]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        dispatcher = Dispatcher(
            settings,
            clock,
            session_factory(app[ENGINE]),
            None,
            rng=random.Random(7),
            onebot=OneBotApi(http, settings),
        )
        yield Pushing(quiet_onebot, dispatcher, clock)


async def enqueue_the_reminders(pushing: Pushing) -> int:
    app = pushing.onebot.app
    async with transaction(session_factory(app[ENGINE])) as session:
        enqueued = await enqueue_reminders(session, app[SETTINGS], pushing.clock)
    return enqueued.count


async def test_a_reminder_for_a_qq_only_member_goes_by_send_private_msg(
    pushing: Pushing,
) -> None:
    onebot = pushing.onebot
    await onebot.bind(MEMBER_QQ, "1001", "张三")
    await onebot.say(MEMBER_QQ, "学习 30")
    pushing.clock.set(dt.datetime(2026, 11, 25, 20, 35, tzinfo=pushing.clock.zone))
    assert await enqueue_the_reminders(pushing) == 1

    counts = await pushing.dispatcher.run_once()

    assert counts["sent"] == 1
    [sent] = pushing.fake.private_messages()
    assert sent.target == MEMBER_QQ
    assert "张三，今天已学习 30/120 分钟" in sent.message
    [call] = pushing.fake.calls(SEND_PRIVATE)
    assert call.authorization == f"Bearer {ACCESS_TOKEN}"
    assert pushing.fake.group_messages() == []
    [item] = await rows(onebot, OutboxItem)
    assert (item.kind, item.state) == ("reminder", "sent")
    [attempt] = await rows(onebot, DeliveryAttempt)
    assert (attempt.outbox_id, attempt.method, attempt.ok) == (item.id, "qq", True)


async def test_a_failing_retcode_is_recorded_and_retried_after_the_backoff(
    pushing: Pushing,
) -> None:
    onebot = pushing.onebot
    await onebot.bind(MEMBER_QQ, "1001", "张三")
    pushing.clock.set(dt.datetime(2026, 11, 25, 20, 35, tzinfo=pushing.clock.zone))
    assert await enqueue_the_reminders(pushing) == 1
    wording = "发送消息失败：账号风控"
    pushing.fake.fail_next(SEND_PRIVATE, 1200, wording)

    counts = await pushing.dispatcher.run_once()

    assert counts["retry"] == 1
    assert pushing.fake.private_messages() == []
    assert len(pushing.fake.calls(SEND_PRIVATE)) == 1
    [item] = await rows(onebot, OutboxItem)
    assert (item.state, item.attempts) == ("pending", 1)
    assert wording in item.last_error
    assert item.due_at > pushing.clock.now()
    [attempt] = await rows(onebot, DeliveryAttempt)
    assert (attempt.method, attempt.ok, attempt.errcode) == ("qq", False, 1200)
    assert attempt.detail == wording

    # Not due yet: nothing is sent.
    await pushing.dispatcher.run_once()
    assert len(pushing.fake.calls(SEND_PRIVATE)) == 1

    # The backoff is 30 s ± 50% for the first retry: 46 s later it is due.
    pushing.clock.advance(seconds=46)
    counts = await pushing.dispatcher.run_once()

    assert counts["sent"] == 1
    [sent] = pushing.fake.private_messages()
    assert sent.target == MEMBER_QQ
    assert "张三，今天已学习 0/120 分钟" in sent.message
    [item] = await rows(onebot, OutboxItem)
    assert (item.state, item.attempts) == ("sent", 1)
    attempts = await rows(onebot, DeliveryAttempt)
    assert [a.ok for a in sorted(attempts, key=lambda a: a.id)] == [False, True]


def set_group_by_cli(database_url: str, branch: str, group_id: str) -> None:
    """`qiyi groups set <branch> <group_id>` as an operator runs it (it runs its own loop)."""
    env = {"QIYI_DATABASE_URL": database_url, "QIYI_SCHEDULER": "off", "QIYI_WECHAT_TOKEN": ""}
    result = CliRunner().invoke(cli_app, ["groups", "set", branch, group_id], env=env)
    assert result.exit_code == 0, result.output


async def test_a_lesson_goes_to_the_branch_group_and_privately_elsewhere(
    pushing: Pushing, database_url: str
) -> None:
    onebot = pushing.onebot
    await onebot.bind(MEMBER_QQ, "1001", "张三")  # 第一党支部: has a group
    await onebot.bind(OTHER_QQ, "2001", "赵强")  # 第二党支部: has none
    await asyncio.to_thread(set_group_by_cli, database_url, "第一党支部", str(GROUP))

    app = onebot.app
    async with transaction(session_factory(app[ENGINE])) as session:
        enqueued = await enqueue_article(session, app[SETTINGS], pushing.clock, PushKind.LESSON)
    assert enqueued.count == 2
    title = enqueued.subject
    assert title
    [post] = await rows(onebot, GroupPost)
    assert (post.channel, post.group_id, post.kind, post.state) == (
        "qq",
        str(GROUP),
        "lesson",
        "pending",
    )

    await pushing.dispatcher.run_once()

    [in_group] = pushing.fake.group_messages()
    assert in_group.target == GROUP
    # Text goes as a segment, so brackets in it are never read as CQ codes.
    assert in_group.message[0]["type"] == "text"
    assert title in in_group.message[0]["data"]["text"]
    [post] = await rows(onebot, GroupPost)
    assert post.state == "sent"
    # The member whose branch has the group gets no private copy; the other one does.
    assert pushing.fake.private_messages(MEMBER_QQ) == []
    [private] = pushing.fake.private_messages(OTHER_QQ)
    assert title in private.message
    states = {item.member_id: item.state for item in await rows(onebot, OutboxItem)}
    member_ids = await member_ids_by_roster(onebot)
    assert states == {member_ids["1001"]: "skipped", member_ids["2001"]: "sent"}

    # A second round sends nothing again.
    await pushing.dispatcher.run_once()
    assert len(pushing.fake.calls(SEND_GROUP)) == 1
    assert len(pushing.fake.calls(SEND_PRIVATE)) == 1


async def test_a_failing_group_post_is_retried_later(pushing: Pushing) -> None:
    onebot = pushing.onebot
    app = onebot.app
    async with transaction(session_factory(app[ENGINE])) as session:
        operator = audit.Actor(audit.Door.CLI, "cli:test@host", "host")
        await groups.set_group(
            session, "第一党支部", "qq", str(GROUP), operator, pushing.clock.now()
        )
    async with transaction(session_factory(app[ENGINE])) as session:
        await enqueue_article(session, app[SETTINGS], pushing.clock, PushKind.NEWS)
    pushing.fake.fail_next(SEND_GROUP, 120, "发送群消息失败")

    await pushing.dispatcher.run_once()

    [post] = await rows(onebot, GroupPost)
    assert (post.state, post.attempts) == ("pending", 1)
    assert "发送群消息失败" in post.last_error
    assert pushing.fake.group_messages() == []

    pushing.clock.advance(seconds=46)
    await pushing.dispatcher.run_once()
    [post] = await rows(onebot, GroupPost)
    assert post.state == "sent"
    assert [m.target for m in pushing.fake.group_messages()] == [GROUP]


async def member_ids_by_roster(onebot: OneBot) -> dict[str, int]:
    found = await rows(onebot, Member, col(Member.roster_id).in_(["1001", "2001"]))
    return {member.roster_id: member.id for member in found}


async def test_a_report_is_posted_to_the_group_with_its_chart(
    pushing: Pushing, database_url: str, tmp_path: Path
) -> None:
    onebot = pushing.onebot
    await asyncio.to_thread(set_group_by_cli, database_url, "第一党支部", str(GROUP))
    app = onebot.app
    chart = tmp_path / "chart.png"
    chart.write_bytes(b"\x89PNG\r\n\x1a\n-a-chart-")
    async with transaction(session_factory(app[ENGINE])) as session:
        await groups.enqueue(
            session,
            [
                groups.Post(
                    "qq",
                    str(GROUP),
                    "report",
                    "report:2026-11",
                    pushing.clock.now().date(),
                    "【2026年11月 支部评分】",
                    pushing.clock.now(),
                    str(chart),
                )
            ],
            pushing.clock.now(),
        )

    await pushing.dispatcher.run_once()

    [in_group] = pushing.fake.group_messages()
    text, image = in_group.message
    assert text == {"type": "text", "data": {"text": "【2026年11月 支部评分】"}}
    assert image["type"] == "image"
    encoded = image["data"]["file"].removeprefix("base64://")
    assert base64.b64decode(encoded) == chart.read_bytes()
