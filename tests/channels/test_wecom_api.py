"""The WeCom API client against the fake WeCom on loopback: the app token shared through the
database, refreshed once on 40014/42001, what `message/send` and `menu/create` put on the
wire, and the faults a sender must tell apart."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels import wechat_menu
from bot.channels.wecom_api import (
    DUPLICATE_CHECK_SECONDS,
    TokenRefused,
    TransientError,
    WeComApi,
    WeComApiError,
    create_menu,
    get_token,
)
from bot.clock import FixedClock
from data import tokens
from data.db import Sessions, session_factory
from tests.fakes.wecom_api import GETTOKEN, MENU_CREATE, MESSAGE_SEND, FakeWeCom

ServerFactory = Callable[..., Awaitable[TestServer]]
ApiFactory = Callable[[], WeComApi]

ALICE = "alice"


@pytest.fixture
def fake() -> FakeWeCom:
    return FakeWeCom()


@pytest.fixture
def sessions(engine: AsyncEngine) -> Sessions:
    return session_factory(engine)


@pytest.fixture
async def base(aiohttp_server: ServerFactory, fake: FakeWeCom) -> str:
    server = await aiohttp_server(fake.app())
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def make_api(
    base: str, sessions: Sessions, clock: FixedClock, fake: FakeWeCom
) -> AsyncIterator[ApiFactory]:
    """API clients, each with its own HTTP session: one per simulated process."""
    opened: list[aiohttp.ClientSession] = []

    def build() -> WeComApi:
        http = aiohttp.ClientSession()
        opened.append(http)
        return WeComApi(
            http,
            sessions,
            clock,
            base=base,
            corp_id=fake.corp_id,
            agent_id=fake.agent_id,
            secret=fake.secret,
        )

    yield build
    for http in opened:
        await http.close()


@pytest.fixture
async def api(make_api: ApiFactory) -> WeComApi:
    return make_api()


async def test_a_text_goes_to_the_member_from_the_app_with_duplicate_check(
    api: WeComApi, fake: FakeWeCom
) -> None:
    answer = await api.send_text(ALICE, "今晚记得学习")

    assert answer.ok
    [sent] = fake.calls(MESSAGE_SEND)
    assert sent.body == {
        "touser": ALICE,
        "msgtype": "text",
        "agentid": fake.agent_id,
        "text": {"content": "今晚记得学习"},
        "enable_duplicate_check": 1,
        "duplicate_check_interval": DUPLICATE_CHECK_SECONDS,
    }
    assert sent.query["access_token"] == fake.tokens_issued[0]
    assert [(s.user, s.content) for s in fake.shown] == [(ALICE, {"content": "今晚记得学习"})]


async def test_a_retried_send_is_shown_once(api: WeComApi, fake: FakeWeCom) -> None:
    await api.send_text(ALICE, "微党课：第一课")
    await api.send_text(ALICE, "微党课：第一课")  # the answer was lost: the dispatcher retries

    assert len(fake.calls(MESSAGE_SEND)) == 2
    assert len(fake.shown) == 1


async def test_textcard_and_markdown(api: WeComApi, fake: FakeWeCom) -> None:
    card = await api.send_textcard(ALICE, "微党课", "第一课", "https://example.org/l/1")
    markdown = await api.send_markdown(ALICE, "**今日学习** 30 分钟")

    assert card.ok and markdown.ok
    assert [(s.msgtype, s.content) for s in fake.shown] == [
        (
            "textcard",
            {
                "title": "微党课",
                "description": "第一课",
                "url": "https://example.org/l/1",
                "btntxt": "详情",
            },
        ),
        ("markdown", {"content": "**今日学习** 30 分钟"}),
    ]


async def test_the_token_is_shared_by_processes_through_the_database(
    make_api: ApiFactory, fake: FakeWeCom, sessions: Sessions
) -> None:
    first, second = make_api(), make_api()

    await first.send_text(ALICE, "一")
    await second.send_text(ALICE, "二")

    assert len(fake.calls(GETTOKEN)) == 1
    async with sessions() as session:
        row = await tokens.read(session, f"wecom:{fake.corp_id}:{fake.agent_id}")
    assert row is not None
    assert row.token == fake.tokens_issued[0]


@pytest.mark.parametrize("invalidate", ["expire_token", "revoke_token"])
async def test_an_invalid_token_is_refreshed_once_and_the_send_retried(
    api: WeComApi, fake: FakeWeCom, invalidate: str
) -> None:
    await api.send_text(ALICE, "一")
    getattr(fake, invalidate)()  # 42001 expired, 40014 invalidated early

    answer = await api.send_text(ALICE, "二")

    assert answer.ok
    assert len(fake.tokens_issued) == 2
    assert fake.calls(MESSAGE_SEND)[-1].query["access_token"] == fake.tokens_issued[1]
    assert [s.content["content"] for s in fake.shown] == ["一", "二"]


async def test_a_token_refused_again_is_not_refreshed_twice(api: WeComApi, fake: FakeWeCom) -> None:
    fake.fail_next(MESSAGE_SEND, 40014, times=3)

    answer = await api.send_text(ALICE, "一")

    assert answer.errcode == 40014
    assert len(fake.calls(MESSAGE_SEND)) == 2
    assert len(fake.calls(GETTOKEN)) == 2


async def test_a_member_outside_the_visible_range_is_out_of_range(
    api: WeComApi, fake: FakeWeCom
) -> None:
    fake.out_of_range(ALICE)

    answer = await api.send_text(ALICE, "一")

    assert answer.errcode == 81013
    assert answer.invalid_users == (ALICE,)
    assert answer.out_of_range and not answer.ok
    assert fake.shown == []
    fake.fail_next(MESSAGE_SEND, 81013)  # the code alone says it too
    assert (await api.send_text("bob", "二")).out_of_range


async def test_busy_is_an_answer_and_a_gateway_error_is_transient(
    api: WeComApi, fake: FakeWeCom
) -> None:
    fake.fail_next(MESSAGE_SEND, -1)
    busy = await api.send_text(ALICE, "一")
    fake.fail_http(MESSAGE_SEND, 502)

    with pytest.raises(TransientError):
        await api.send_text(ALICE, "二")

    assert (busy.errcode, busy.ok, busy.out_of_range) == (-1, False, False)
    assert fake.shown == []


async def test_a_wrong_secret_is_refused_at_gettoken(
    http: aiohttp.ClientSession, base: str, fake: FakeWeCom
) -> None:
    with pytest.raises(TokenRefused) as refused:
        await get_token(http, base, fake.corp_id, "not-the-secret")

    assert refused.value.errcode == 40001


async def test_the_menu_is_installed_for_the_app(
    http: aiohttp.ClientSession, base: str, fake: FakeWeCom
) -> None:
    token, lifetime = await get_token(http, base, fake.corp_id, fake.secret)
    menu = wechat_menu.platform_json(wechat_menu.load())

    await create_menu(http, base, token, fake.agent_id, menu)

    assert lifetime == 7200
    assert fake.menus == [menu]
    assert fake.calls(MENU_CREATE)[0].query == {"access_token": token, "agentid": "1000002"}
    fake.fail_next(MENU_CREATE, -1)
    with pytest.raises(WeComApiError):
        await create_menu(http, base, token, fake.agent_id, menu)
