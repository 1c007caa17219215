"""The scheduled jobs: their triggers and times, the scheduler's settings, the job bodies, and
the server starting and stopping the scheduler and the dispatcher (scheduler/jobs.py,
bot/app.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from pytest_aiohttp import AiohttpClient
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

import bot.app
from bot import cli_pushes, pushes
from bot.app import create_app
from bot.clock import FixedClock
from bot.settings import Settings, load_settings
from data.db import Sessions, session_factory, transaction
from data.models import DeliveryAttempt, MailboxItem, OutboxItem, PushKind
from scheduler import jobs
from scheduler.jobs import PushJobs, build_scheduler, next_runs, triggers
from tests.conftest import MORNING, SHANGHAI, Chat, make_settings
from tests.queries import count

UNUSED_URL = "sqlite+aiosqlite:///unused.db"  # settings only; never connected
URUMQI = ZoneInfo("Asia/Urumqi")
JOB_IDS = sorted(
    [
        "lesson",
        "news",
        "video",
        "reminders",
        "month_report",
        "quarter_report",
        "year_report",
        "forget_processed",
        "fetch_materials",
        "retry_materials",
    ]
)
ONE_SECOND = dt.timedelta(seconds=1)


def at(hour: int, minute: int = 0, day: int = 25, zone: ZoneInfo = SHANGHAI) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=zone)


def next_fire(settings: Settings, job_id: str, now: dt.datetime) -> dt.datetime | None:
    _name, trigger = triggers(settings)[job_id]
    return trigger.get_next_fire_time(None, now)


# --- triggers and next runs --------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(at(6, 0), at(7, 30), id="before-today"),
        pytest.param(at(7, 30), at(7, 30), id="at-the-time"),
        pytest.param(at(8, 0), at(7, 30, day=26), id="after-tomorrow"),
        pytest.param(MORNING, at(7, 30, day=26), id="morning-fixture"),
    ],
)
def test_lesson_runs_at_07_30_shanghai(now: dt.datetime, expected: dt.datetime) -> None:
    fire = next_fire(make_settings(UNUSED_URL), "lesson", now)

    assert fire == expected
    assert fire is not None and fire.utcoffset() == dt.timedelta(hours=8)


def test_news_runs_at_noon() -> None:
    settings = make_settings(UNUSED_URL)

    assert next_fire(settings, "news", MORNING) == at(12, 0)
    assert next_fire(settings, "news", at(12, 0) + ONE_SECOND) == at(12, 0, day=26)


@pytest.mark.parametrize(
    ("sweep", "now", "expected"),
    [
        pytest.param(5, at(9, 1), at(9, 5), id="every-5"),
        pytest.param(5, at(20, 26), at(20, 30), id="reaches-20:30"),
        pytest.param(5, at(23, 57), at(0, 0, day=26), id="past-midnight"),
        pytest.param(15, at(9, 1), at(9, 15), id="every-15"),
        pytest.param(10, at(9, 50) + ONE_SECOND, at(10, 0), id="every-10-next-hour"),
    ],
)
def test_reminder_sweep_runs_every_few_minutes(
    sweep: int, now: dt.datetime, expected: dt.datetime
) -> None:
    settings = make_settings(UNUSED_URL, reminder_sweep_minutes=sweep)

    assert next_fire(settings, "reminders", now) == expected


def test_reminder_sweep_fires_in_steps_of_the_setting() -> None:
    _name, trigger = triggers(make_settings(UNUSED_URL))["reminders"]
    fires: list[dt.datetime] = []
    previous: dt.datetime | None = None
    now = at(20, 21)
    for _ in range(4):
        fire = trigger.get_next_fire_time(previous, now)
        assert fire is not None
        fires.append(fire)
        previous, now = fire, fire + ONE_SECOND

    assert fires == [at(20, 25), at(20, 30), at(20, 35), at(20, 40)]


def test_next_runs_lists_the_jobs() -> None:
    runs = next_runs(make_settings(UNUSED_URL), MORNING)

    assert [(job_id, when) for job_id, _name, when in runs] == [
        ("lesson", at(7, 30, day=26)),
        ("news", at(12, 0)),
        ("video", at(19, 0)),
        ("reminders", at(9, 0)),
        ("month_report", dt.datetime(2026, 12, 1, 8, 0, tzinfo=SHANGHAI)),
        ("quarter_report", dt.datetime(2027, 1, 1, 8, 5, tzinfo=SHANGHAI)),
        ("year_report", dt.datetime(2027, 1, 1, 8, 10, tzinfo=SHANGHAI)),
        ("forget_processed", at(3, 40, day=26)),
        ("fetch_materials", at(9, 0)),
        ("retry_materials", at(3, 50, day=26)),
    ]
    assert "every 5 min" in runs[3][1]


def test_times_come_from_the_settings() -> None:
    settings = make_settings(
        UNUSED_URL,
        lesson_time="06:45",
        news_time="11:30",
        video_time="18:15",
        reminder_sweep_minutes=10,
        report_time="07:15",
    )

    runs = next_runs(settings, MORNING)

    assert [(job_id, when) for job_id, _name, when in runs] == [
        ("lesson", at(6, 45, day=26)),
        ("news", at(11, 30)),
        ("video", at(18, 15)),
        ("reminders", at(9, 0)),
        ("month_report", dt.datetime(2026, 12, 1, 7, 15, tzinfo=SHANGHAI)),
        ("quarter_report", dt.datetime(2027, 1, 1, 7, 20, tzinfo=SHANGHAI)),
        ("year_report", dt.datetime(2027, 1, 1, 7, 25, tzinfo=SHANGHAI)),
        ("forget_processed", at(3, 40, day=26)),
        ("fetch_materials", at(9, 0)),
        ("retry_materials", at(3, 50, day=26)),
    ]
    assert next_fire(settings, "reminders", at(9, 1)) == at(9, 10)
    assert "every 10 min" in runs[3][1]


def test_times_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QIYI_LESSON_TIME", "06:45")
    monkeypatch.setenv("QIYI_NEWS_TIME", "12:30")
    monkeypatch.setenv("QIYI_REMINDER_SWEEP_MINUTES", "2")
    monkeypatch.setenv("QIYI_TIMEZONE", "Asia/Shanghai")
    settings = load_settings(_env_file=None, database_url=UNUSED_URL)

    assert next_fire(settings, "lesson", at(6, 0)) == at(6, 45)
    assert next_fire(settings, "news", MORNING) == at(12, 30)
    assert next_fire(settings, "reminders", at(9, 1)) == at(9, 2)


def test_the_timezone_setting_shifts_the_zone() -> None:
    settings = make_settings(UNUSED_URL, timezone="Asia/Urumqi")

    runs = {job_id: when for job_id, _name, when in next_runs(settings, MORNING)}

    # 09:00 in Shanghai is 07:00 in Urumqi: today's 07:30 lesson is still ahead.
    assert runs["lesson"] == at(7, 30, zone=URUMQI) == at(9, 30)
    assert runs["news"] == at(12, 0, zone=URUMQI) == at(14, 0)
    assert runs["lesson"] is not None and runs["lesson"].utcoffset() == dt.timedelta(hours=6)


# --- the scheduler -----------------------------------------------------------------------


@pytest.fixture
def sessions(sqlite_url: str) -> Sessions:
    """A session factory for jobs that are built but never run (no connection is made)."""
    return session_factory(bot.app.create_engine(sqlite_url))


async def test_build_scheduler_configures_the_jobs(sessions: Sessions, clock: FixedClock) -> None:
    settings = make_settings(UNUSED_URL, timezone="Asia/Urumqi")
    push_jobs = PushJobs(settings, clock, sessions)
    scheduler = build_scheduler(settings, push_jobs)
    assert isinstance(scheduler, AsyncIOScheduler)
    assert scheduler.timezone == URUMQI

    scheduler.start(paused=True)  # job defaults are applied when jobs are really added
    try:
        scheduled = {job.id: job for job in scheduler.get_jobs()}
        assert sorted(scheduled) == JOB_IDS
        for job in scheduled.values():
            assert job.coalesce is True
            assert job.max_instances == 1
            assert job.misfire_grace_time == jobs.MISFIRE_GRACE_SECONDS
            assert job.misfire_grace_time is not None and job.misfire_grace_time >= 60
        assert scheduled["lesson"].func == push_jobs.lesson
        assert scheduled["news"].func == push_jobs.news
        assert scheduled["reminders"].func == push_jobs.reminders
        lesson_fields = {f.name: str(f) for f in scheduled["lesson"].trigger.fields}
        assert (lesson_fields["hour"], lesson_fields["minute"]) == ("7", "30")
        assert scheduled["lesson"].trigger.timezone == URUMQI
    finally:
        scheduler.shutdown(wait=False)


async def test_a_job_run_twice_enqueues_once(chat: Chat, clock: FixedClock) -> None:
    conversation = chat.conversation
    push_jobs = PushJobs(conversation.settings, clock, conversation.sessions)

    first = await push_jobs.lesson()
    second = await push_jobs.lesson()

    assert first == pushes.Enqueued(PushKind.LESSON, 6, "弘扬志愿服务精神")
    assert second == pushes.Enqueued(PushKind.LESSON, 0)
    assert await count(conversation, OutboxItem) == 6

    assert (await push_jobs.news()).count == 6
    assert (await push_jobs.news()).count == 0
    clock.set(at(20, 30))
    assert (await push_jobs.reminders()).count == 6
    assert (await push_jobs.reminders()).count == 0
    assert await count(conversation, OutboxItem) == 18


async def test_scheduled_job_and_cli_run_the_same_function(
    chat: Chat, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation = chat.conversation
    calls: list[str] = []
    real = pushes.enqueue_article

    async def spy(*args: Any) -> pushes.Enqueued:
        done = await real(*args)
        calls.append(f"{args[-1].value}:{done.count}")
        return done

    monkeypatch.setattr(pushes, "enqueue_article", spy)
    settings = conversation.settings
    scheduler = build_scheduler(settings, PushJobs(settings, clock, conversation.sessions))
    job = scheduler.get_job("lesson")
    assert job is not None

    await job.func()
    async with transaction(conversation.sessions) as session:
        by_hand = await cli_pushes._enqueue(cli_pushes.PushChoice.LESSON, session, settings, clock)

    assert calls == ["lesson:6", "lesson:0"]
    assert by_hand.count == 0
    assert await count(conversation, OutboxItem) == 6


# --- the server's background work --------------------------------------------------------


def capture_schedulers(monkeypatch: pytest.MonkeyPatch) -> list[AsyncIOScheduler]:
    """Record every scheduler the app builds (bot.app imported build_scheduler by name)."""
    built: list[AsyncIOScheduler] = []
    real = bot.app.build_scheduler

    def capture(settings: Settings, push_jobs: PushJobs) -> AsyncIOScheduler:
        scheduler = real(settings, push_jobs)
        built.append(scheduler)
        return scheduler

    monkeypatch.setattr(bot.app, "build_scheduler", capture)
    return built


def dispatcher_tasks() -> list[asyncio.Task[Any]]:
    return [task for task in asyncio.all_tasks() if task.get_name() == "dispatcher"]


async def test_server_starts_and_stops_the_scheduler(
    aiohttp_client: AiohttpClient,
    engine: AsyncEngine,
    database_url: str,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built = capture_schedulers(monkeypatch)
    settings = make_settings(database_url, scheduler="on")

    client = await aiohttp_client(create_app(settings, clock))

    assert len(built) == 1
    scheduler = built[0]
    assert scheduler.running
    assert sorted(job.id for job in scheduler.get_jobs()) == JOB_IDS
    lesson = scheduler.get_job("lesson")
    assert lesson is not None and lesson.func.__self__.clock is clock  # the app's clock
    assert len(dispatcher_tasks()) == 1
    assert (await client.get("/healthz")).status == 200

    await client.close()

    assert not scheduler.running
    assert scheduler.state == STATE_STOPPED
    assert dispatcher_tasks() == []


async def wait_for_states(chat: Chat, wanted: str, expected: int) -> list[str]:
    """The outbox states once `expected` items reached `wanted`, or after 5 s (a real
    background task is awaited here, not the wall clock of any time-based logic)."""
    states: list[str] = []
    for _ in range(100):
        async with chat.conversation.sessions() as session:
            states = list(await session.exec(select(OutboxItem.state)))
        if states.count(wanted) == expected:
            break
        await asyncio.sleep(0.05)
    return states


async def test_with_the_scheduler_off_the_dispatcher_still_delivers(
    aiohttp_client: AiohttpClient,
    chat: Chat,
    database_url: str,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built = capture_schedulers(monkeypatch)
    conversation = chat.conversation
    async with transaction(conversation.sessions) as session:
        done = await pushes.enqueue_article(session, conversation.settings, clock, PushKind.LESSON)
    assert done.count == 6  # members bound on "test", none on WeChat
    settings = make_settings(database_url, scheduler="off")

    client = await aiohttp_client(create_app(settings, clock))
    assert len(dispatcher_tasks()) == 1
    states = await wait_for_states(chat, "mailbox", 6)
    await client.close()

    assert built == []
    assert states == ["mailbox"] * 6
    async with conversation.sessions() as session:
        mailbox = list(await session.exec(select(MailboxItem).order_by(col(MailboxItem.id))))
        attempts = list(await session.exec(select(DeliveryAttempt)))
    assert len(mailbox) == 6
    assert all(
        item.text == "新一期微党课《弘扬志愿服务精神》，回复“微党课”阅读" for item in mailbox
    )
    assert [(a.method, a.ok) for a in attempts] == [("mailbox", True)] * 6
    assert dispatcher_tasks() == []
