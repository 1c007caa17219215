"""The official QQ bot: `X-Signature-Timestamp` is covered by the signature, and must be
within the replay window (±QIYI_REPLAY_WINDOW_SECONDS, 5 minutes) of the server's clock: a
signed event captured 30 days ago was accepted."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import create_app
from bot.appkeys import CONVERSATION
from bot.clock import FixedClock
from data.models import Binding, ProcessedMessage
from tests.channels import test_qqbot as qq_side
from tests.conftest import make_settings, seed
from tests.fakes.qqbot import TOKEN_PATH, FakeQQBot

AppClientFactory = Callable[..., Awaitable[TestClient]]
AppServerFactory = Callable[..., Awaitable[TestServer]]


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
        bind_proof="name",  # binding is not what these tests are about
    )
    client = await aiohttp_client(create_app(settings, clock))
    await seed(client.app[CONVERSATION])
    return qq_side.QQ(client, fake)


async def post_signed_at(qq: qq_side.QQ, body: bytes, moment: int) -> ClientResponse:
    """The platform's signature (Ed25519 over timestamp + body) made at `moment`."""
    timestamp = str(moment)
    headers = {
        "X-Signature-Ed25519": qq.key.sign(timestamp.encode() + body).hex(),
        "X-Signature-Timestamp": timestamp,
    }
    return await qq.post(body, sign=False, headers=headers)


def now_of(qq: qq_side.QQ) -> int:
    return int(qq.timestamp())


DAY = 24 * 3600


@pytest.mark.parametrize(
    "offset",
    [-30 * DAY, -6 * 60, -301, 301, 6 * 60, 30 * DAY],
    ids=["30-days-old", "6-min-old", "301-s-old", "301-s-ahead", "6-min-ahead", "30-days-ahead"],
)
async def test_a_signed_event_outside_the_window_is_refused(qq: qq_side.QQ, offset: int) -> None:
    body = qq_side.encode(qq.c2c(qq_side.MEMBER, "绑定 1001 张三"))

    response = await post_signed_at(qq, body, now_of(qq) + offset)

    await qq.settle()
    assert response.status == 403
    assert await qq_side.rows(qq, ProcessedMessage) == []
    assert await qq_side.rows(qq, Binding) == []
    assert qq.fake.received == []


@pytest.mark.parametrize("offset", [-300, -4 * 60, 0, 4 * 60, 300], ids=str)
async def test_a_signed_event_within_the_window_is_answered(qq: qq_side.QQ, offset: int) -> None:
    body = qq_side.encode(qq.c2c(qq_side.MEMBER, "绑定 1001 张三"))

    response = await post_signed_at(qq, body, now_of(qq) + offset)

    assert response.status == 200
    assert await response.json() == {"op": 12, "d": 0}
    [reply] = await qq.replies(1)
    assert "绑定成功" in reply.content
    await qq.settle()
    assert len(await qq_side.rows(qq, Binding)) == 1


async def test_a_captured_event_replayed_later_is_refused(
    qq: qq_side.QQ, clock: FixedClock
) -> None:
    body = qq_side.encode(qq.c2c(qq_side.MEMBER, "学习 30"))
    await qq.bind(qq_side.MEMBER, "1001", "张三")
    captured_at = now_of(qq)
    assert (await post_signed_at(qq, body, captured_at)).status == 200
    await qq.replies(2)
    await qq.settle()

    clock.advance(days=30)  # the same bytes and headers, a month later
    response = await post_signed_at(qq, body, captured_at)

    await qq.settle()
    assert response.status == 403
    assert len(qq.fake.replies) == 2
