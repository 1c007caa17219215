"""The outbound WeChat API client against a fake platform: the stable token, shared through
the database by every process, refreshed once on an invalid-token answer, never through the
invalidating /cgi-bin/token; and what the sends put on the wire."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.channels.wechat_api import Answer, TransientError, WeChatApi, WeChatApiError
from bot.clock import FixedClock
from data.db import Sessions, session_factory
from data.models import AccessToken
from tests.fakes.wechat_api import CUSTOM_SEND, STABLE_TOKEN, TEMPLATE_SEND, FakeWeChat

ServerFactory = Callable[..., Awaitable[TestServer]]
ApiFactory = Callable[..., WeChatApi]

ALICE = "openid-alice"
BOB = "openid-bob"
LIFETIME = dt.timedelta(seconds=7200)
MARGIN = dt.timedelta(minutes=5)  # the client refreshes this long before expiry


@pytest.fixture
def fake() -> FakeWeChat:
    return FakeWeChat()


@pytest.fixture
def sessions(engine: AsyncEngine) -> Sessions:
    return session_factory(engine)


@pytest.fixture
async def base(aiohttp_server: ServerFactory, fake: FakeWeChat) -> str:
    server = await aiohttp_server(fake.app())
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
async def make_api(
    base: str, sessions: Sessions, clock: FixedClock, fake: FakeWeChat
) -> AsyncIterator[ApiFactory]:
    """API clients, each with its own HTTP session: one per simulated process."""
    opened: list[aiohttp.ClientSession] = []

    def build(*, secret: str | None = None, at: str | None = None) -> WeChatApi:
        http = aiohttp.ClientSession()
        opened.append(http)
        return WeChatApi(
            http,
            sessions,
            clock,
            base=at or base,
            appid=fake.appid,
            secret=secret or fake.secret,
        )

    yield build
    for http in opened:
        await http.close()
    assert fake.calls("/cgi-bin/token") == []


@pytest.fixture
async def api(make_api: ApiFactory) -> WeChatApi:
    return make_api()


def paths(fake: FakeWeChat) -> list[str]:
    return [received.path for received in fake.received]


def tokens_used(fake: FakeWeChat, path: str = CUSTOM_SEND) -> list[str]:
    return [received.query["access_token"] for received in fake.calls(path)]


async def stored(sessions: Sessions, appid: str) -> AccessToken | None:
    async with sessions() as session:
        return (await session.exec(select(AccessToken).where(AccessToken.appid == appid))).first()


# --- the token ------------------------------------------------------------------------------


async def test_token_comes_from_stable_token_and_is_stored(
    api: WeChatApi, fake: FakeWeChat, sessions: Sessions, clock: FixedClock
) -> None:
    assert await api.send_text(ALICE, "你好") == Answer(0, "ok")
    assert await api.send_text(BOB, "再见") == Answer(0, "ok")

    assert paths(fake) == [STABLE_TOKEN, CUSTOM_SEND, CUSTOM_SEND]
    assert fake.calls(STABLE_TOKEN)[0].body == {
        "grant_type": "client_credential",
        "appid": fake.appid,
        "secret": fake.secret,
        "force_refresh": False,
    }
    (token,) = fake.tokens_issued
    assert tokens_used(fake) == [token, token]
    row = await stored(sessions, fake.appid)
    assert row is not None
    assert (row.token, row.expires_at, row.fetched_at) == (
        token,
        clock.now() + LIFETIME,
        clock.now(),
    )


async def test_invalid_token_is_refreshed_once_and_the_call_retried_once(
    api: WeChatApi, fake: FakeWeChat, sessions: Sessions
) -> None:
    assert (await api.send_text(ALICE, "一")).ok
    fake.expire_token()

    assert await api.send_text(ALICE, "二") == Answer(0, "ok")

    old, new = fake.tokens_issued
    assert paths(fake) == [STABLE_TOKEN, CUSTOM_SEND, CUSTOM_SEND, STABLE_TOKEN, CUSTOM_SEND]
    assert tokens_used(fake) == [old, old, new]
    assert fake.sent_texts(ALICE) == ["一", "二"]
    row = await stored(sessions, fake.appid)
    assert row is not None and row.token == new


@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
async def test_token_error_that_persists_is_returned_after_one_retry(
    api: WeChatApi, fake: FakeWeChat, errcode: int
) -> None:
    assert (await api.send_text(ALICE, "一")).ok
    fake.fail_next(CUSTOM_SEND, errcode, times=5)

    answer = await api.send_text(ALICE, "二")

    assert answer.errcode == errcode
    # One refresh (the stable token hands out the same, still valid token) and one retry.
    assert paths(fake) == [STABLE_TOKEN, CUSTOM_SEND, CUSTOM_SEND, STABLE_TOKEN, CUSTOM_SEND]
    assert fake.tokens_issued == [fake.current_token]
    assert fake.sent_texts(ALICE) == ["一"]


async def test_second_process_reuses_the_stored_token(
    make_api: ApiFactory, fake: FakeWeChat
) -> None:
    first, second = make_api(), make_api()
    assert (await first.send_text(ALICE, "一")).ok

    assert await second.send_text(BOB, "二") == Answer(0, "ok")

    (token,) = fake.tokens_issued
    assert paths(fake) == [STABLE_TOKEN, CUSTOM_SEND, CUSTOM_SEND]
    assert tokens_used(fake) == [token, token]


async def test_process_with_a_stale_token_rereads_the_refreshed_one(
    make_api: ApiFactory, fake: FakeWeChat
) -> None:
    first, second = make_api(), make_api()
    assert (await first.send_text(ALICE, "一")).ok
    assert (await second.send_text(BOB, "一")).ok
    fake.expire_token()

    assert (await first.send_text(ALICE, "二")).ok  # refreshes
    assert (await second.send_text(BOB, "二")).ok  # re-reads what the first one stored

    old, new = fake.tokens_issued
    assert len(fake.calls(STABLE_TOKEN)) == 2
    assert tokens_used(fake) == [old, old, old, new, old, new]
    assert fake.sent_texts(BOB) == ["一", "二"]


async def test_one_refresher_per_process(api: WeChatApi, fake: FakeWeChat) -> None:
    answers = await asyncio.gather(*(api.send_text(ALICE, f"a{n}") for n in range(5)))

    assert all(answer.ok for answer in answers)
    assert paths(fake) == [STABLE_TOKEN] + [CUSTOM_SEND] * 5
    assert sorted(fake.sent_texts(ALICE)) == [f"a{n}" for n in range(5)]


async def test_one_refresher_across_processes_on_postgresql(
    make_api: ApiFactory, fake: FakeWeChat, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serves one process; its lock is not held across the HTTP call")
    first, second = make_api(), make_api()

    answers = await asyncio.gather(
        *(first.send_text(ALICE, f"a{n}") for n in range(5)),
        *(second.send_text(BOB, f"b{n}") for n in range(5)),
    )

    assert all(answer.ok for answer in answers)
    assert len(fake.calls(STABLE_TOKEN)) == 1
    assert len(fake.calls(CUSTOM_SEND)) == 10
    assert set(tokens_used(fake)) == set(fake.tokens_issued)


@pytest.mark.parametrize(
    ("left", "refreshed"),
    [(MARGIN + dt.timedelta(seconds=1), False), (MARGIN - dt.timedelta(seconds=1), True)],
)
async def test_token_is_refreshed_shortly_before_it_expires(
    api: WeChatApi,
    fake: FakeWeChat,
    sessions: Sessions,
    clock: FixedClock,
    left: dt.timedelta,
    refreshed: bool,
) -> None:
    assert (await api.send_text(ALICE, "一")).ok
    clock.advance(seconds=(LIFETIME - left).total_seconds())

    assert (await api.send_text(ALICE, "二")).ok

    assert len(fake.calls(STABLE_TOKEN)) == (2 if refreshed else 1)
    row = await stored(sessions, fake.appid)
    assert row is not None
    if refreshed:
        assert row.fetched_at == clock.now()
        assert row.expires_at > clock.now() + MARGIN
    else:
        assert row.expires_at == clock.now() + left


async def test_token_refusal_is_an_error_and_stores_nothing(
    make_api: ApiFactory, fake: FakeWeChat, sessions: Sessions
) -> None:
    api = make_api(secret="wrong")

    with pytest.raises(WeChatApiError) as raised:
        await api.send_text(ALICE, "一")

    assert raised.value.errcode == 40125
    assert paths(fake) == [STABLE_TOKEN]
    row = await stored(sessions, fake.appid)
    assert row is None or row.token == ""  # at most the empty placeholder


# --- failures in transit --------------------------------------------------------------------


async def test_gateway_error_is_transient(api: WeChatApi, fake: FakeWeChat) -> None:
    assert (await api.send_text(ALICE, "一")).ok
    fake.fail_http(CUSTOM_SEND, 502)

    with pytest.raises(TransientError, match="HTTP 502"):
        await api.send_text(ALICE, "二")

    assert paths(fake) == [STABLE_TOKEN, CUSTOM_SEND, CUSTOM_SEND]  # no retry by itself
    assert fake.sent_texts(ALICE) == ["一"]


async def test_unreachable_platform_is_transient(
    make_api: ApiFactory, unused_tcp_port: int
) -> None:
    api = make_api(at=f"http://127.0.0.1:{unused_tcp_port}")

    with pytest.raises(TransientError):
        await api.send_text(ALICE, "一")


@pytest.mark.parametrize("errcode", [-1, 45015, 45047, 43004, 40164])
async def test_platform_answers_are_returned_as_they_are(
    api: WeChatApi, fake: FakeWeChat, errcode: int
) -> None:
    fake.fail_next(CUSTOM_SEND, errcode)

    answer = await api.send_text(ALICE, "一")

    assert answer.errcode == errcode and not answer.ok
    assert paths(fake) == [STABLE_TOKEN, CUSTOM_SEND]  # the caller decides what comes next


# --- what goes on the wire ------------------------------------------------------------------


async def test_text_message_body(api: WeChatApi, fake: FakeWeChat) -> None:
    assert (await api.send_text(ALICE, "学习提醒：今天 30/120 分钟")).ok

    (call,) = fake.calls(CUSTOM_SEND)
    assert call.body == {
        "touser": ALICE,
        "msgtype": "text",
        "text": {"content": "学习提醒：今天 30/120 分钟"},
    }
    assert "学习提醒" in call.raw  # Chinese goes unescaped


async def test_template_message_body_and_idempotency(api: WeChatApi, fake: FakeWeChat) -> None:
    data = {"thing1": "学习提醒", "time2": "2026-11-25 20:30"}

    assert (await api.send_template(ALICE, "tmpl-1", data, "7:reminder:study:2026-11-25")).ok
    assert (await api.send_template(ALICE, "tmpl-1", data, "7:reminder:study:2026-11-25")).ok

    expected = {
        "touser": ALICE,
        "template_id": "tmpl-1",
        "client_msg_id": "7:reminder:study:2026-11-25",
        "data": {"thing1": {"value": "学习提醒"}, "time2": {"value": "2026-11-25 20:30"}},
    }
    assert [call.body for call in fake.calls(TEMPLATE_SEND)] == [expected, expected]
    # The same client_msg_id twice is one message on the platform.
    assert fake.sent_templates(ALICE) == [expected]
