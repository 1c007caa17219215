"""OneBot v11: no secret, no server (unless QIYI_ONEBOT_ALLOW_UNSIGNED says the implementation
is on loopback), and events older than QIYI_ONEBOT_MAX_EVENT_AGE_SECONDS — or implausibly
far ahead — are refused: the event's `time` is inside the signed body, the only timestamp
OneBot sends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import create_app
from bot.clock import FixedClock
from bot.settings import ConfigError
from data.models import Binding, ProcessedMessage, StudyEntry
from tests.channels import test_onebot as onebot_side
from tests.conftest import make_settings

AppClientFactory = Callable[..., Awaitable[TestClient]]
AppServerFactory = Callable[..., Awaitable[TestServer]]

DAY = 24 * 3600


# --- no secret -----------------------------------------------------------------------------


def test_without_a_secret_the_server_refuses_to_start(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, wechat_token=None, onebot_api_url="http://127.0.0.1:9")

    with pytest.raises(ConfigError) as refused:
        create_app(settings, background=False)

    message = str(refused.value)
    assert "\n" not in message
    assert "QIYI_ONEBOT_SECRET" in message
    assert "QIYI_ONEBOT_ALLOW_UNSIGNED" in message


def test_without_a_secret_beside_wechat_the_server_refuses_to_start_too(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, onebot_api_url="http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="QIYI_ONEBOT_SECRET"):
        create_app(settings, background=False)


async def test_allowed_unsigned_events_are_answered(
    aiohttp_client: AppClientFactory,
    aiohttp_server: AppServerFactory,
    database_url: str,
    clock: FixedClock,
    engine: AsyncEngine,
) -> None:
    onebot = await onebot_side.start(
        aiohttp_client,
        aiohttp_server,
        database_url,
        clock,
        onebot_secret=None,
        onebot_allow_unsigned=True,
    )
    event = onebot.event(onebot_side.MEMBER_QQ, [onebot_side.text_segment("绑定 1001 张三")])
    response = await onebot.post(event, sign=False)
    assert response.status == 200
    assert "绑定成功" in (await response.json())["reply"]


# --- the event's age -----------------------------------------------------------------------


@pytest.fixture
async def onebot(
    aiohttp_client: AppClientFactory,
    aiohttp_server: AppServerFactory,
    database_url: str,
    clock: FixedClock,
    engine: AsyncEngine,
) -> onebot_side.OneBot:
    onebot = await onebot_side.start(aiohttp_client, aiohttp_server, database_url, clock)
    await onebot.bind(onebot_side.MEMBER_QQ, "1001", "张三")
    return onebot


def study_at(onebot: onebot_side.OneBot, offset: int) -> dict[str, object]:
    event = onebot.event(onebot_side.MEMBER_QQ, [onebot_side.text_segment("学习 30")])
    event["time"] = int(onebot.now().timestamp()) + offset
    return event


async def studied(onebot: onebot_side.OneBot) -> int:
    return len(await onebot_side.rows(onebot, StudyEntry))


@pytest.mark.parametrize(
    "offset",
    [-30 * DAY, -DAY - 1, 301, DAY],
    ids=["30-days-old", "a-day-and-a-second-old", "301-s-ahead", "a-day-ahead"],
)
async def test_an_event_too_old_or_ahead_is_refused_and_changes_nothing(
    onebot: onebot_side.OneBot, offset: int
) -> None:
    processed_before = await onebot_side.rows(onebot, ProcessedMessage)

    response = await onebot.post(study_at(onebot, offset))

    assert response.status == 403
    assert await studied(onebot) == 0
    assert await onebot_side.rows(onebot, ProcessedMessage) == processed_before


@pytest.mark.parametrize("offset", [-DAY, -3600, 0, 300], ids=["a-day", "an-hour", "now", "ahead"])
async def test_an_event_within_its_age_is_answered(onebot: onebot_side.OneBot, offset: int) -> None:
    response = await onebot.post(study_at(onebot, offset))

    assert response.status == 200
    assert "30/120" in (await response.json())["reply"]
    assert await studied(onebot) == 1


@pytest.mark.parametrize("time", [None, "1764032400", 1.5e9, True], ids=str)
async def test_an_event_without_an_integer_time_is_refused(
    onebot: onebot_side.OneBot, time: object
) -> None:
    event = study_at(onebot, 0)
    if time is None:
        del event["time"]
    else:
        event["time"] = time

    response = await onebot.post(event)

    assert response.status == 400
    assert await studied(onebot) == 0


async def test_the_age_comes_from_the_setting(
    aiohttp_client: AppClientFactory,
    aiohttp_server: AppServerFactory,
    database_url: str,
    clock: FixedClock,
    engine: AsyncEngine,
) -> None:
    onebot = await onebot_side.start(
        aiohttp_client, aiohttp_server, database_url, clock, onebot_max_event_age_seconds=3600
    )
    await onebot.bind(onebot_side.MEMBER_QQ, "1001", "张三")

    two_hours_old = await onebot.post(study_at(onebot, -7200))
    half_an_hour_old = await onebot.post(study_at(onebot, -1800))

    assert two_hours_old.status == 403
    assert half_an_hour_old.status == 200
    assert await studied(onebot) == 1
    assert len(await onebot_side.rows(onebot, Binding)) == 1
