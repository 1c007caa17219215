"""When a member's record gains a binding on another channel, every account already bound to
it is told at once — through that account only, never through the new one (which may be an
impostor's)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.channels.wechat import MESSAGE_WINDOW
from bot.channels.wechat_api import WeChatApi
from bot.conversation import Conversation
from bot.dispatcher import Dispatcher
from bot.messages import Sender
from data.models import OutboxState
from tests.conftest import make_settings
from tests.fakes.wechat_api import FakeWeChat
from tests.security.binding_helpers import (
    bind_directly,
    issue_code,
    say_as,
    security_items,
)

ServerFactory = Callable[..., Awaitable[TestServer]]
REAL_WECHAT = Sender("wechat", "o-real-1001")
REAL_QQ = Sender("qq", "10001")
NOTICE = "【安全提醒】"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    session = aiohttp.ClientSession()
    yield session
    await session.close()


@pytest.fixture
async def fake_wechat(aiohttp_server: ServerFactory) -> tuple[FakeWeChat, str]:
    fake = FakeWeChat()
    server = await aiohttp_server(fake.app())
    return fake, str(server.make_url("")).rstrip("/")


def dispatcher(
    conversation: Conversation,
    database_url: str,
    http: aiohttp.ClientSession,
    fake_wechat: tuple[FakeWeChat, str],
) -> Dispatcher:
    fake, base = fake_wechat
    settings = make_settings(
        database_url, wechat_appid=fake.appid, wechat_secret=fake.secret, wechat_api_base=base
    )
    clock, sessions = conversation.clock, conversation.sessions
    api = WeChatApi(http, sessions, clock, base=base, appid=fake.appid, secret=fake.secret)
    return Dispatcher(settings, clock, sessions, api, rng=random.Random(0))


async def test_every_existing_account_gets_a_security_notice(conversation: Conversation) -> None:
    await bind_directly(conversation, REAL_WECHAT, "1001")
    await bind_directly(conversation, REAL_QQ, "1001")
    code = await issue_code(conversation, "1001")

    newcomer = Sender("qqbot", "qqbot-openid")
    assert "绑定成功" in await say_as(conversation, newcomer, f"绑定 1001 {code}")

    items = await security_items(conversation, "1001")
    assert sorted(item.key.rsplit(">", 1)[1].split(":")[0] for item in items) == ["qq", "wechat"]
    for item in items:
        assert item.state == OutboxState.PENDING
        assert item.due_at == conversation.clock.now()  # at once
        assert "QQ机器人" in item.text and "解绑 QQ机器人" in item.text
        assert "11月25日 09:00" in item.text
        assert "解绑 QQ机器人" in item.brief


async def test_a_first_binding_tells_nobody(conversation: Conversation) -> None:
    code = await issue_code(conversation, "1001")
    assert "绑定成功" in await say_as(conversation, REAL_WECHAT, f"绑定 1001 {code}")
    assert await security_items(conversation, "1001") == []


async def test_the_notice_shows_in_replies_on_its_own_account_only(
    conversation: Conversation,
) -> None:
    await bind_directly(conversation, REAL_QQ, "1001")
    code = await issue_code(conversation, "1001")
    impostor = Sender("wechat", "o-impostor")
    assert "绑定成功" in await say_as(conversation, impostor, f"绑定 1001 {code}")

    # The impostor's replies do not carry (nor use up) the notice meant for the QQ account.
    assert NOTICE not in await say_as(conversation, impostor, "今日")
    [item] = await security_items(conversation, "1001")
    assert item.state == OutboxState.PENDING

    # The real member's next message on QQ does.
    reply = await say_as(conversation, REAL_QQ, "今日")
    assert NOTICE in reply and "解绑 微信" in reply
    [item] = await security_items(conversation, "1001")
    assert item.state == OutboxState.MAILBOX


async def test_the_dispatcher_sends_the_notice_to_the_real_wechat_account(
    conversation: Conversation,
    database_url: str,
    http: aiohttp.ClientSession,
    fake_wechat: tuple[FakeWeChat, str],
) -> None:
    await bind_directly(conversation, REAL_WECHAT, "1001")
    await say_as(conversation, REAL_WECHAT, "今日", MESSAGE_WINDOW)  # the window is open
    code = await issue_code(conversation, "1001")
    assert "绑定成功" in await say_as(conversation, Sender("qq", "66666"), f"绑定 1001 {code}")

    await dispatcher(conversation, database_url, http, fake_wechat).run_once()

    fake, _ = fake_wechat
    [sent] = fake.sent_texts(REAL_WECHAT.external_id)
    assert NOTICE in sent and "解绑 QQ" in sent
    [item] = await security_items(conversation, "1001")
    assert item.state == OutboxState.SENT


async def test_a_notice_for_the_qq_account_never_goes_to_the_new_wechat_account(
    conversation: Conversation,
    database_url: str,
    http: aiohttp.ClientSession,
    fake_wechat: tuple[FakeWeChat, str],
) -> None:
    # The real member is on QQ; someone binds the record on WeChat, and writes (its window
    # is open, so a push to it would go through).
    await bind_directly(conversation, REAL_QQ, "1001")
    code = await issue_code(conversation, "1001")
    impostor = Sender("wechat", "o-impostor")
    assert "绑定成功" in await say_as(conversation, impostor, f"绑定 1001 {code}", MESSAGE_WINDOW)
    await say_as(conversation, impostor, "今日", MESSAGE_WINDOW)

    await dispatcher(conversation, database_url, http, fake_wechat).run_once()

    fake, _ = fake_wechat
    assert fake.sent_texts(impostor.external_id) == []
    assert fake.sent_templates() == []
    # It waits for the QQ account (no OneBot API here), and reaches it in the next reply.
    [item] = await security_items(conversation, "1001")
    assert item.state == OutboxState.PENDING
    assert item.due_at > conversation.clock.now()
    assert NOTICE in await say_as(conversation, REAL_QQ, "今日")
