"""Malformed signatures of any kind — non-ASCII, the wrong length, not hex, missing — are
refused with 403 on every webhook, and change nothing. (A non-ASCII `signature` made
`GET /wechat` answer 500: `hmac.compare_digest` raises TypeError on non-ASCII text.)"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import create_app
from bot.appkeys import CONVERSATION
from bot.clock import FixedClock
from data.models import Binding, ProcessedMessage, StudyEntry
from tests.channels import test_onebot as onebot_side
from tests.channels import test_qqbot as qq_side
from tests.channels import test_wechat as wechat_side
from tests.conftest import make_settings, seed
from tests.fakes.qqbot import TOKEN_PATH, FakeQQBot

AppClientFactory = Callable[..., Awaitable[TestClient]]
AppServerFactory = Callable[..., Awaitable[TestServer]]

# What goes where a SHA-1 in hex (40 characters) is expected; None: no signature at all.
SHA1_MALFORMED = {
    "non-ascii": "签名" * 20,
    "non-ascii-latin": "é" * 40,
    "wrong-length": "abc123",
    "too-long": "a" * 41,
    "not-hex": "z" * 40,
    "empty": "",
    "missing": None,
}


async def nothing_changed(engine_rows: Callable[..., Awaitable[list[Any]]]) -> None:
    assert await engine_rows(ProcessedMessage) == []
    assert await engine_rows(StudyEntry) == []


# --- WeChat --------------------------------------------------------------------------------


@pytest.fixture
async def wechat(
    aiohttp_client: AppClientFactory, database_url: str, clock: FixedClock, engine: AsyncEngine
) -> wechat_side.WeChat:
    return await wechat_side.start(aiohttp_client, make_settings(database_url), clock)


@pytest.fixture
async def safe_wechat(
    aiohttp_client: AppClientFactory, database_url: str, clock: FixedClock, engine: AsyncEngine
) -> wechat_side.WeChat:
    settings = make_settings(
        database_url, wechat_aes_key=wechat_side.AES_KEY, wechat_appid=wechat_side.APPID
    )
    return await wechat_side.start(aiohttp_client, settings, clock)


def with_signature(query: dict[str, str], name: str, value: str | None) -> dict[str, str]:
    changed = dict(query)
    if value is None:
        changed.pop(name, None)
    else:
        changed[name] = value
    return changed


@pytest.mark.parametrize("value", SHA1_MALFORMED.values(), ids=SHA1_MALFORMED.keys())
async def test_wechat_url_check_refuses_a_malformed_signature(
    wechat: wechat_side.WeChat, value: str | None
) -> None:
    query = with_signature(wechat.query(echostr="echo-me"), "signature", value)
    response = await wechat.client.get("/wechat", params=query)
    assert response.status == 403
    assert "echo-me" not in await response.text()


@pytest.mark.parametrize("value", SHA1_MALFORMED.values(), ids=SHA1_MALFORMED.keys())
async def test_wechat_message_refuses_a_malformed_signature(
    wechat: wechat_side.WeChat, value: str | None
) -> None:
    xml = wechat_side.message_xml(wechat_side.MEMBER, "text", wechat.now, Content="绑定 1001 张三")
    response = await wechat.post(xml, with_signature(wechat.query(), "signature", value))
    assert response.status == 403
    assert "绑定" not in await response.text()
    assert await wechat_side.rows(wechat, Binding) == []
    await nothing_changed(lambda model: wechat_side.rows(wechat, model))


@pytest.mark.parametrize("value", SHA1_MALFORMED.values(), ids=SHA1_MALFORMED.keys())
async def test_wechat_safe_mode_refuses_a_malformed_msg_signature(
    safe_wechat: wechat_side.WeChat, value: str | None
) -> None:
    xml = wechat_side.message_xml(
        wechat_side.MEMBER, "text", safe_wechat.now, Content="绑定 1001 张三", MsgId=1
    )
    body, query = safe_wechat.encrypted_request(xml)
    response = await safe_wechat.post(body, with_signature(query, "msg_signature", value))
    assert response.status == 403
    assert await wechat_side.rows(safe_wechat, Binding) == []
    await nothing_changed(lambda model: wechat_side.rows(safe_wechat, model))


# --- OneBot --------------------------------------------------------------------------------


@pytest.fixture
async def onebot(
    aiohttp_client: AppClientFactory,
    aiohttp_server: AppServerFactory,
    database_url: str,
    clock: FixedClock,
    engine: AsyncEngine,
) -> onebot_side.OneBot:
    return await onebot_side.start(aiohttp_client, aiohttp_server, database_url, clock)


ONEBOT_MALFORMED = {
    "non-ascii": "sha1=" + "签" * 40,
    "non-ascii-latin": "sha1=" + "é" * 40,
    "wrong-length": "sha1=abc123",
    "not-hex": "sha1=" + "z" * 40,
    "no-prefix": "0" * 40,
    "empty": "",
    "missing": None,
}


@pytest.mark.parametrize("value", ONEBOT_MALFORMED.values(), ids=ONEBOT_MALFORMED.keys())
async def test_onebot_refuses_a_malformed_signature(
    onebot: onebot_side.OneBot, value: str | None
) -> None:
    event = onebot.event(onebot_side.MEMBER_QQ, [onebot_side.text_segment("绑定 1001 张三")])
    headers = {} if value is None else {"X-Signature": value}
    response = await onebot.post(event, sign=value is not None, headers=headers)
    assert response.status == 403
    assert await onebot_side.rows(onebot, Binding) == []
    await nothing_changed(lambda model: onebot_side.rows(onebot, model))


# --- the official QQ bot -------------------------------------------------------------------


@pytest.fixture
async def qq(
    aiohttp_client: AppClientFactory,
    aiohttp_server: AppServerFactory,
    database_url: str,
    clock: FixedClock,
    engine: AsyncEngine,
) -> qq_side.QQ:
    fake = FakeQQBot(appid=qq_side.APPID, secret=qq_side.SECRET)
    server = await aiohttp_server(fake.app())
    base = str(server.make_url("")).rstrip("/")
    settings = make_settings(
        database_url,
        wechat_token=None,
        qqbot_appid=qq_side.APPID,
        qqbot_secret=qq_side.SECRET,
        qqbot_api_base=base,
        qqbot_token_url=base + TOKEN_PATH,
    )
    client = await aiohttp_client(create_app(settings, clock))
    await seed(client.app[CONVERSATION])
    return qq_side.QQ(client, fake)


QQ_MALFORMED = {
    "non-ascii": "签" * 128,
    "wrong-length": "ab" * 10,
    "too-long": "ab" * 65,
    "not-hex": "zz" * 64,
    "empty": "",
    "missing": None,
}


async def post_with(qq: qq_side.QQ, body: bytes, headers: dict[str, str]) -> ClientResponse:
    return await qq.post(body, sign=False, headers=headers)


@pytest.mark.parametrize("value", QQ_MALFORMED.values(), ids=QQ_MALFORMED.keys())
async def test_qqbot_refuses_a_malformed_signature(qq: qq_side.QQ, value: str | None) -> None:
    body = qq_side.encode(qq.c2c(qq_side.MEMBER, "绑定 1001 张三"))
    headers = {"X-Signature-Timestamp": qq.timestamp()}
    if value is not None:
        headers["X-Signature-Ed25519"] = value
    response = await post_with(qq, body, headers)
    await qq.settle()
    assert response.status == 403
    assert await qq_side.rows(qq, Binding) == []
    await nothing_changed(lambda model: qq_side.rows(qq, model))
    assert qq.fake.received == []


async def test_qqbot_refuses_a_timestamp_in_other_digits_even_when_signed(qq: qq_side.QQ) -> None:
    # "١٧٦..." (Arabic-Indic digits) passes str.isdigit() and int(); it is no timestamp here.
    arabic = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
    timestamp = qq.timestamp().translate(arabic)
    body = qq_side.encode(qq.c2c(qq_side.MEMBER, "绑定 1001 张三"))
    signature = qq.key.sign(timestamp.encode() + body).hex()
    headers = {"X-Signature-Ed25519": signature, "X-Signature-Timestamp": timestamp}
    response = await post_with(qq, body, headers)
    await qq.settle()
    assert response.status == 403
    assert await qq_side.rows(qq, Binding) == []
    assert qq.fake.received == []
