"""The dedupe keys outlive every replay a channel would still accept: a key forgotten while
its signed request is still fresh lets the captured request count again. The nightly job
keeps them `processed.KEEP` (7 days) or longer, as the replay window and OneBot's event age
demand."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.appkeys import ENGINE, SETTINGS
from bot.channels.freshness import replay_horizon
from bot.clock import FixedClock
from data import processed
from data.db import session_factory
from data.models import StudyEntry
from scheduler.jobs import PushJobs, clean_up_summary
from tests.channels import test_onebot as onebot_side
from tests.channels import test_wechat as wechat_side
from tests.conftest import make_settings

AppClientFactory = Callable[..., Awaitable[TestClient]]
AppServerFactory = Callable[..., Awaitable[TestServer]]

DAY = 24 * 3600
WINDOWS = [1, 300, 3600, 3 * DAY, 30 * DAY]
ONEBOT_AGES = [60, DAY, 6 * DAY]


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("onebot_age", ONEBOT_AGES)
def test_keys_are_kept_longer_than_any_channel_accepts_a_replay(
    window: int, onebot_age: int
) -> None:
    settings = make_settings(
        "sqlite+aiosqlite:///unused.db",
        replay_window_seconds=window,
        onebot_max_event_age_seconds=onebot_age,
    )
    kept = processed.retention(replay_horizon(settings))

    # WeChat and the QQ bot: a timestamp a window ahead when first accepted, accepted again
    # until a window behind.
    assert kept > dt.timedelta(seconds=2 * window)
    # OneBot: an event a window ahead, accepted again until it is `onebot_age` old.
    assert kept > dt.timedelta(seconds=window + onebot_age)
    assert kept >= processed.KEEP


def test_with_the_defaults_the_keys_are_kept_a_week_and_the_job_says_so() -> None:
    settings = make_settings("sqlite+aiosqlite:///unused.db")
    assert processed.retention(replay_horizon(settings)) == processed.KEEP == dt.timedelta(days=7)
    assert "processed messages after 7 days" in clean_up_summary(settings)


def test_a_longer_window_keeps_the_keys_longer_and_the_job_says_so() -> None:
    settings = make_settings("sqlite+aiosqlite:///unused.db", replay_window_seconds=5 * DAY)
    assert processed.retention(replay_horizon(settings)) == dt.timedelta(days=11)
    assert "processed messages after 11 days" in clean_up_summary(settings)


async def run_the_nightly_job(app: web.Application, clock: FixedClock) -> None:
    await PushJobs(app[SETTINGS], clock, session_factory(app[ENGINE])).clean_up()


async def test_a_onebot_event_replayed_after_a_week_and_the_clean_up_counts_once(
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
        replay_window_seconds=3 * DAY,
        onebot_max_event_age_seconds=6 * DAY,
    )
    await onebot.bind(onebot_side.MEMBER_QQ, "1001", "张三")
    event = onebot.event(onebot_side.MEMBER_QQ, [onebot_side.text_segment("学习 30")])
    event["time"] = int(onebot.now().timestamp()) + 3 * DAY  # as far ahead as accepted
    body = onebot_side.encode(event)
    first = await onebot.post(body)
    assert first.status == 200

    clock.advance(days=8)  # past processed.KEEP; the event is 5 days old, still accepted
    await run_the_nightly_job(onebot.app, clock)
    replay = await onebot.post(body)

    assert replay.status == 200
    assert await replay.json() == await first.json()
    assert len(await onebot_side.rows(onebot, StudyEntry)) == 1


async def test_a_wechat_request_replayed_after_a_week_and_the_clean_up_counts_once(
    aiohttp_client: AppClientFactory, database_url: str, clock: FixedClock, engine: AsyncEngine
) -> None:
    settings = make_settings(database_url, replay_window_seconds=5 * DAY, bind_proof="name")
    wechat = await wechat_side.start(aiohttp_client, settings, clock)
    await wechat_side.bind_member(wechat)
    ahead = wechat.now + 5 * DAY  # as far ahead as accepted
    query = wechat.query(timestamp=ahead)
    body = wechat_side.message_xml(wechat_side.MEMBER, "text", ahead, Content="学习 30", MsgId=7)
    first = await wechat.post(body, query)
    assert first.status == 200

    clock.advance(days=8)  # the timestamp is 3 days old, within the 5-day window
    await run_the_nightly_job(wechat.client.app, clock)
    replay = await wechat.post(body, query)

    assert replay.status == 200
    content = wechat_side.parse_reply(await first.text())["Content"]
    assert "30/120" in content
    assert wechat_side.parse_reply(await replay.text())["Content"] == content
    assert len(await wechat_side.rows(wechat, StudyEntry)) == 1
