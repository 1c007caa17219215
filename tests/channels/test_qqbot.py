"""The official QQ Bot platform end to end: Ed25519-signed webhook events in, an immediate
acknowledgement out, and passive replies through a fake bot API (tests/fakes/qqbot.py).

Requests are signed here with a key derived from the secret as the protocol says
(PROTOCOLS.md, "Official QQ Bot API"), computed independently of the product's helper.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.app import create_app
from bot.appkeys import CONVERSATION, ENGINE
from bot.channels.qqbot import QQBotWebhook
from bot.channels.qqbot_signing import private_key
from bot.clock import FixedClock
from content.texts import render
from data.models import (
    AccessToken,
    Binding,
    MailboxItem,
    OutboxItem,
    ProcessedMessage,
    StudyEntry,
    VolunteerEntry,
)
from tests.conftest import make_settings, seed
from tests.fakes.qqbot import TOKEN_PATH, FakeQQBot, Message
from tests.queries import issue_code

AppClientFactory = Callable[..., Awaitable[TestClient]]
AppServerFactory = Callable[..., Awaitable[TestServer]]

APPID = "appid"
SECRET = "DG5g3B4j9X2KOErG"  # the secret of the platform's official validation vector

# The official callback-validation vector, byte for byte.
VALIDATION_BODY = b'{"d":{"plain_token":"Arq0D5A61EgUu4OxUvOp","event_ts":"1725442341"},"op":13}'
VALIDATION_SIGNATURE = (
    "87befc99c42c651b3aac0278e71ada338433ae26fcb24307bdc5ad38c1adc2d0"
    "1bcfcadc0842edac85e85205028a1132afe09280305f13aa6909ffc2d652c706"
)

MEMBER = "E4F4AEA33253A2797FB897C50B81D7ED"  # user_openid of roster member 1001 (张三)
SECRETARY = "0A5D8F2C7B1E4C3D9A6B5E8F7C2D1A0B"  # user_openid of 1003 (王芳, secretary)
GROUP = "C9F778FE6ADF9D1D1DBE395BF744A33A"  # a group's group_openid
GROUP_MEMBER = "04E7D3B6A5F1C2E8D9B0A7C6F5E4D3C2"  # 张三's member_openid in groups
REPLY_TIMEOUT = 5.0  # seconds to wait for a background reply
POLL_SECONDS = 0.01


def seed_of(secret: str) -> bytes:
    """The Ed25519 seed: the secret repeated until 32 bytes long, the first 32 bytes."""
    repeated = secret * (32 // len(secret) + 1)
    return repeated.encode()[:32]


def platform_key(secret: str = SECRET) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed_of(secret))


def raw_private(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass
class QQ:
    """Plays the QQ platform against the test server: builds events, signs and posts them."""

    client: TestClient
    fake: FakeQQBot
    key: Ed25519PrivateKey = field(default_factory=platform_key)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def app(self) -> web.Application:
        return self.client.app

    def timestamp(self) -> str:
        return str(int(self.app[CONVERSATION].clock.now().timestamp()))

    def c2c(self, openid: str, content: str, event_id: str | None = None) -> dict[str, Any]:
        """A private message (C2C_MESSAGE_CREATE)."""
        number = next(self._ids)
        return {
            "op": 0,
            "id": event_id or f"C2C_MESSAGE_CREATE:event-{number:04d}",
            "t": "C2C_MESSAGE_CREATE",
            "d": {
                "id": f"ROBOT1.0_c2c-message-{number:04d}",
                "author": {"id": openid, "user_openid": openid, "union_openid": openid},
                "content": content,
                "timestamp": "2026-11-25T09:00:00+08:00",
                "attachments": [],
            },
        }

    def group_at(self, group_openid: str, member_openid: str, content: str) -> dict[str, Any]:
        """An @-message in a group (GROUP_AT_MESSAGE_CREATE)."""
        number = next(self._ids)
        return {
            "op": 0,
            "id": f"GROUP_AT_MESSAGE_CREATE:event-{number:04d}",
            "t": "GROUP_AT_MESSAGE_CREATE",
            "d": {
                "id": f"ROBOT1.0_group-message-{number:04d}",
                "group_id": group_openid,
                "group_openid": group_openid,
                "author": {"id": member_openid, "member_openid": member_openid},
                "content": content,
                "timestamp": "2026-11-25T09:00:00+08:00",
            },
        }

    async def post(
        self,
        payload: dict[str, Any] | bytes,
        *,
        key: Ed25519PrivateKey | None = None,
        sign: bool = True,
        headers: dict[str, str] | None = None,
    ) -> ClientResponse:
        body = payload if isinstance(payload, bytes) else encode(payload)
        sent = {"Content-Type": "application/json", "User-Agent": "QQBot-Callback"}
        if sign:
            timestamp = self.timestamp()
            signature = (key or self.key).sign(timestamp.encode() + body).hex()
            sent["X-Signature-Ed25519"] = signature
            sent["X-Signature-Timestamp"] = timestamp
        sent.update(headers or {})
        return await self.client.post("/qqbot", data=body, headers=sent)

    async def send(self, payload: dict[str, Any]) -> None:
        """Posts a signed event; asserts the immediate acknowledgement."""
        response = await self.post(payload)
        assert response.status == 200, (response.status, await response.text())
        assert await response.json() == {"op": 12, "d": 0}

    async def replies(self, count: int) -> list[Message]:
        """Waits (bounded) until the fake accepted `count` replies; returns them all."""
        for _ in range(int(REPLY_TIMEOUT / POLL_SECONDS)):
            if len(self.fake.replies) >= count:
                break
            await asyncio.sleep(POLL_SECONDS)
        assert len(self.fake.replies) >= count, self.fake.received
        return list(self.fake.replies)

    async def exchange(self, payload: dict[str, Any]) -> Message:
        """Sends a message event and returns the one passive reply it gets."""
        before = len(self.fake.replies)
        await self.send(payload)
        replies = await self.replies(before + 1)
        await self.settle()
        assert len(self.fake.replies) == before + 1
        return replies[before]

    async def settle(self) -> None:
        """Waits for the webhook's background answers to finish."""
        await webhook_of(self.app).drain()

    async def bind(self, openid: str, roster_id: str, name: str) -> None:
        reply = await self.exchange(self.c2c(openid, f"绑定 {roster_id} {name}"))
        assert "绑定成功" in reply.content


def webhook_of(app: web.Application) -> QQBotWebhook:
    """The product's webhook object behind POST /qqbot (its background tasks live there)."""
    for route in app.router.routes():
        if route.method == "POST" and route.resource and route.resource.canonical == "/qqbot":
            webhook = getattr(route.handler, "__self__", None)
            assert isinstance(webhook, QQBotWebhook)
            return webhook
    raise AssertionError("POST /qqbot is not mounted")


async def rows(qq: QQ, model: type[Any], *where: Any) -> list[Any]:
    async with AsyncSession(qq.app[ENGINE]) as session:
        return list((await session.exec(select(model).where(*where))).all())


@pytest.fixture
async def qq(
    aiohttp_client: AppClientFactory,
    aiohttp_server: AppServerFactory,
    database_url: str,
    clock: FixedClock,
    engine: AsyncEngine,  # a clean, migrated database (PostgreSQL is reset)
) -> QQ:
    fake = FakeQQBot(appid=APPID, secret=SECRET)
    server = await aiohttp_server(fake.app())
    base = str(server.make_url("")).rstrip("/")
    settings = make_settings(
        database_url,
        wechat_token=None,
        qqbot_appid=APPID,
        qqbot_secret=SECRET,
        qqbot_api_base=base,
        qqbot_token_url=base + TOKEN_PATH,
        bind_proof="name",  # members bind with `绑定 工号 姓名` here
    )
    client = await aiohttp_client(create_app(settings, clock))
    await seed(client.app[CONVERSATION])
    return QQ(client, fake)


# --- keys and callback validation --------------------------------------------------------


def test_the_key_is_derived_from_the_secret_repeated_to_32_bytes() -> None:
    independent = Ed25519PrivateKey.from_private_bytes((SECRET * 3).encode()[:32])
    assert raw_private(private_key(SECRET)) == raw_private(independent)
    assert raw_public(private_key(SECRET)) == raw_public(independent)
    assert raw_private(platform_key()) == raw_private(independent)  # this file's own helper
    # A secret whose length does not divide 32.
    odd = "abcdefghij"
    expected = Ed25519PrivateKey.from_private_bytes((odd * 4).encode()[:32])
    assert raw_private(private_key(odd)) == raw_private(expected)
    assert raw_private(private_key("another-secret")) != raw_private(independent)


def test_the_official_vector_signs_as_documented() -> None:
    # Independent of the product: the documented key signs event_ts + plain_token so.
    signature = platform_key().sign(b"1725442341" + b"Arq0D5A61EgUu4OxUvOp").hex()
    assert signature == VALIDATION_SIGNATURE


async def test_callback_validation_answers_the_official_vector(qq: QQ) -> None:
    response = await qq.post(VALIDATION_BODY)
    assert response.status == 200
    assert await response.json() == {
        "plain_token": "Arq0D5A61EgUu4OxUvOp",
        "signature": VALIDATION_SIGNATURE,
    }


async def test_callback_validation_signed_by_another_key_is_refused(qq: QQ) -> None:
    response = await qq.post(VALIDATION_BODY, key=platform_key("not-the-bot-secret"))
    assert response.status == 403
    assert VALIDATION_SIGNATURE not in await response.text()


# --- signatures on events ----------------------------------------------------------------


async def test_a_signed_event_is_acknowledged(qq: QQ) -> None:
    # An event the bot does not act on is still acknowledged.
    event = {
        "op": 0,
        "id": "GROUP_ADD_ROBOT:1",
        "t": "GROUP_ADD_ROBOT",
        "d": {"group_openid": GROUP, "op_member_openid": GROUP_MEMBER, "timestamp": 1},
    }
    response = await qq.post(event)
    assert response.status == 200
    assert await response.json() == {"op": 12, "d": 0}


async def test_a_message_signed_with_the_products_key_is_accepted(qq: QQ) -> None:
    # Signed with bot.channels.qqbot_signing.private_key(secret), as the brief asks.
    qq.key = private_key(SECRET)
    await qq.bind(MEMBER, "1001", "张三")


async def test_forged_events_are_refused_and_nothing_is_processed(qq: QQ) -> None:
    event = qq.c2c(MEMBER, "绑定 1001 张三")
    body = encode(event)
    timestamp = qq.timestamp()
    good = qq.key.sign(timestamp.encode() + body).hex()

    by_another_key = await qq.post(event, key=platform_key("not-the-bot-secret"))
    altered_body = await qq.post(
        body.replace(b"1001", b"1002"),
        sign=False,
        headers={"X-Signature-Ed25519": good, "X-Signature-Timestamp": timestamp},
    )
    altered_timestamp = await qq.post(
        body,
        sign=False,
        headers={"X-Signature-Ed25519": good, "X-Signature-Timestamp": str(int(timestamp) + 1)},
    )
    not_hex = await qq.post(
        body,
        sign=False,
        headers={"X-Signature-Ed25519": "zz" * 64, "X-Signature-Timestamp": timestamp},
    )
    for response in (by_another_key, altered_body, altered_timestamp, not_hex):
        assert response.status == 403
        assert "op" not in await response.text()

    await qq.settle()
    await asyncio.sleep(0.05)
    assert await rows(qq, ProcessedMessage) == []
    assert await rows(qq, Binding) == []
    assert qq.fake.received == []


async def test_callback_validation_cannot_be_used_to_sign_a_forged_event(qq: QQ) -> None:
    # Callback validation signs event_ts + plain_token; an event's signature covers
    # timestamp + body. Whoever can make the server sign an arbitrary plain_token (the
    # JSON of an event) gets a valid signature for that event, and then needs no key.
    forged = encode(qq.c2c(MEMBER, "绑定 1001 张三"))
    timestamp = qq.timestamp()
    validation = {"op": 13, "d": {"plain_token": forged.decode(), "event_ts": timestamp}}
    oracle = await qq.post(encode(validation), sign=False)
    signature = (await oracle.json())["signature"] if oracle.status == 200 else "00" * 64

    response = await qq.post(
        forged,
        sign=False,
        headers={"X-Signature-Ed25519": signature, "X-Signature-Timestamp": timestamp},
    )

    await qq.settle()  # let a wrongly accepted event finish before judging
    await asyncio.sleep(0.05)
    assert response.status == 403
    assert await rows(qq, Binding) == []
    assert await rows(qq, ProcessedMessage) == []
    assert qq.fake.received == []


async def test_an_unsigned_event_is_refused(qq: QQ) -> None:
    response = await qq.post(qq.c2c(MEMBER, "绑定 1001 张三"), sign=False)
    assert response.status == 403
    await qq.settle()
    await asyncio.sleep(0.05)
    assert await rows(qq, ProcessedMessage) == []
    assert qq.fake.received == []


# --- messages and passive replies --------------------------------------------------------


async def test_c2c_bind_then_study_gets_passive_replies(qq: QQ) -> None:
    bind = qq.c2c(MEMBER, "绑定 1001 张三")
    bound = await qq.exchange(bind)
    assert bound.path == f"/v2/users/{MEMBER}/messages"
    assert bound.msg_id == bind["d"]["id"]
    assert bound.msg_seq == 1
    assert bound.body["msg_type"] == 0
    assert "绑定成功" in bound.content
    [binding] = await rows(qq, Binding)
    assert (binding.channel, binding.external_id) == ("qqbot", MEMBER)

    study = qq.c2c(MEMBER, "学习 30")
    studied = await qq.exchange(study)
    assert studied.path == f"/v2/users/{MEMBER}/messages"
    assert studied.msg_id == study["d"]["id"]
    assert studied.msg_seq == 1
    assert "30/120" in studied.content
    assert studied.authorization == f"QQBot {qq.fake.tokens_issued[0]}"
    assert [entry.minutes for entry in await rows(qq, StudyEntry)] == [30]


async def test_an_unbound_user_is_asked_to_bind(qq: QQ) -> None:
    reply = await qq.exchange(qq.c2c(MEMBER, "学习 30"))
    assert reply.content == render("bind_prompt", proof="name")
    assert await rows(qq, StudyEntry) == []


async def test_group_at_message_with_a_leading_space(qq: QQ) -> None:
    bound = await qq.exchange(qq.group_at(GROUP, GROUP_MEMBER, " 绑定 1001 张三"))
    assert bound.path == f"/v2/groups/{GROUP}/messages"
    assert "绑定成功" in bound.content
    [binding] = await rows(qq, Binding)
    assert (binding.channel, binding.external_id) == ("qqbot-group", GROUP_MEMBER)

    today = qq.group_at(GROUP, GROUP_MEMBER, " 今日")
    reply = await qq.exchange(today)
    assert reply.path == f"/v2/groups/{GROUP}/messages"
    assert reply.msg_id == today["d"]["id"]
    assert reply.msg_seq == 1
    assert "今日学习：0/120 分钟" in reply.content


async def test_the_same_event_twice_is_processed_once(qq: QQ) -> None:
    await qq.bind(MEMBER, "1001", "张三")
    study = qq.c2c(MEMBER, "学习 30")
    first = await qq.exchange(study)
    assert "30/120" in first.content

    await qq.send(study)  # the platform delivers the event again
    await qq.settle()

    assert [entry.minutes for entry in await rows(qq, StudyEntry)] == [30]
    keys = [row.key for row in await rows(qq, ProcessedMessage)]
    assert keys.count(study["id"]) == 1
    accepted = [m for m in qq.fake.replies if m.msg_id == study["d"]["id"]]
    assert len(accepted) == 1


async def test_the_access_token_is_fetched_once_and_cached(qq: QQ) -> None:
    qq.fake.expires_in = 7000  # the platform tells what is left, as a string
    await qq.bind(MEMBER, "1001", "张三")
    await qq.exchange(qq.c2c(MEMBER, "学习 30"))
    await qq.exchange(qq.c2c(MEMBER, "今日"))

    assert qq.fake.token_calls == [{"appId": APPID, "clientSecret": SECRET}]
    token = qq.fake.tokens_issued[0]
    assert {m.authorization for m in qq.fake.received} == {f"QQBot {token}"}
    [row] = await rows(qq, AccessToken)
    now = qq.app[CONVERSATION].clock.now()
    assert row.token == token
    assert row.expires_at == now + dt.timedelta(seconds=7000)

    # Still cached shortly before the refresh margin (5 minutes before expiry) ...
    clock = qq.app[CONVERSATION].clock
    assert isinstance(clock, FixedClock)
    clock.advance(seconds=7000 - 300 - 60)
    await qq.exchange(qq.c2c(MEMBER, "今日"))
    assert len(qq.fake.token_calls) == 1
    # ... and refreshed inside it.
    clock.advance(seconds=120)
    reply = await qq.exchange(qq.c2c(MEMBER, "今日"))
    assert len(qq.fake.token_calls) == 2
    assert reply.authorization == f"QQBot {qq.fake.tokens_issued[1]}"


async def test_a_revoked_token_is_refreshed_once(qq: QQ) -> None:
    await qq.bind(MEMBER, "1001", "张三")
    qq.fake.revoke_tokens()
    reply = await qq.exchange(qq.c2c(MEMBER, "今日"))
    assert "今日学习" in reply.content
    assert len(qq.fake.token_calls) == 2
    assert reply.authorization == f"QQBot {qq.fake.tokens_issued[1]}"


# --- pushes: the mailbox -----------------------------------------------------------------


async def test_a_review_result_reaches_a_qqbot_member_in_their_next_reply(qq: QQ) -> None:
    await qq.bind(MEMBER, "1001", "张三")
    # A secretary binds with an invitation code, whatever the mode.
    code = await issue_code(qq.app[CONVERSATION], "1003")
    await qq.bind(SECRETARY, "1003", code)
    submitted = await qq.exchange(qq.c2c(MEMBER, "志愿 2 帮扶老人"))
    assert "等待支部书记审核" in submitted.content
    [entry] = await rows(qq, VolunteerEntry)

    approved = await qq.exchange(qq.c2c(SECRETARY, f"通过 {entry.id}"))
    assert f"已通过 #{entry.id}" in approved.content
    [push] = await rows(qq, OutboxItem)
    assert push.kind == "review"
    # The platform takes no unsolicited messages: nothing reached the member yet.
    assert len(qq.fake.replies_to("users", MEMBER)) == 2

    reply = await qq.exchange(qq.c2c(MEMBER, "今日"))
    assert reply.path == f"/v2/users/{MEMBER}/messages"
    assert "【你有 1 条新通知】" in reply.content
    assert f"你的志愿服务 #{entry.id}" in reply.content
    assert "已通过审核" in reply.content
    assert "今日学习：0/120 分钟" in reply.content
    [push] = await rows(qq, OutboxItem)
    assert push.state == "mailbox"
    assert all(m.msg_id for m in qq.fake.received)  # passive replies only

    # Told once: the next reply carries no notice.
    again = await qq.exchange(qq.c2c(MEMBER, "今日"))
    assert "新通知" not in again.content
    assert all(item.delivered_at is not None for item in await rows(qq, MailboxItem))
