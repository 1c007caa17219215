"""Scale-out on PostgreSQL: several processes (each with an engine, a pool and HTTP clients
of its own) on one database.

Inbound retries are answered once, the outbox is shared by concurrent dispatchers without a
double send, exactly one process runs the scheduler (and another takes over when it dies),
a job repeated by a new leader does not enqueue twice, and the access token is fetched once.
Every test but the last needs PostgreSQL (QIYI_TEST_DATABASE_URL); none runs on SQLite.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import xmltodict
from aiohttp.test_utils import TestClient, TestServer
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING, STATE_STOPPED
from pytest_aiohttp import AiohttpClient
from sqlalchemy import func, insert, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

import bot.app
import bot.dispatcher
from bot.app import build_conversation, create_app
from bot.appkeys import CONVERSATION, ENGINE
from bot.channels.wechat_api import WeChatApi
from bot.clock import FixedClock, today
from bot.dispatcher import Dispatcher
from bot.settings import Settings
from data import migrate, outbox
from data.db import create_engine, session_factory, transaction
from data.models import (
    AccessToken,
    Binding,
    Branch,
    DeliveryAttempt,
    Member,
    OutboxItem,
    OutboxState,
    ProcessedMessage,
    PushKind,
    Role,
    StudyEntry,
)
from data.outbox import Push
from scheduler.jobs import PushJobs
from scheduler.leader import LOCK_KEY, Leadership
from tests.conftest import (
    MORNING,
    ROSTER,
    SHANGHAI,
    TOKEN,
    Chat,
    _reset_postgres,
    make_settings,
    seed,
)
from tests.fakes.wechat_api import STABLE_TOKEN, FakeWeChat

ServerFactory = Callable[..., Awaitable[TestServer]]

EVENING = dt.datetime(2026, 11, 25, 20, 30, tzinfo=SHANGHAI)  # the default reminder time
ACCOUNT = "gh_qiyi0000test"
MEMBER = "oMember1001xxxxxxxxxxxxxxxxx"
MEMBERS = 2_000
POLL_SECONDS = 5.0
POLL_STEP = 0.05
RUN_TIMEOUT = 120.0  # a bound on a whole concurrent round, so a deadlock fails, not hangs
SUBPROCESS_TIMEOUT = 60


# --- PostgreSQL only -----------------------------------------------------------------------


@dataclass
class Processes:
    """Engines on one clean, migrated PostgreSQL database: one engine per "process"."""

    url: str
    engines: list[AsyncEngine] = field(default_factory=list)

    def engine(self) -> AsyncEngine:
        engine = create_engine(self.url)
        self.engines.append(engine)
        return engine


@pytest.fixture
async def processes(pg_url: str) -> AsyncIterator[Processes]:
    await _reset_postgres(pg_url)
    migrating = create_engine(pg_url)
    try:
        await migrate.upgrade(migrating)
    finally:
        await migrating.dispose()
    rig = Processes(pg_url)
    yield rig
    for engine in rig.engines:
        await engine.dispose()


async def wait_until(condition: Callable[[], Awaitable[bool]]) -> bool:
    """Poll `condition` every 50 ms for at most 5 s (a real background process must act)."""
    for _ in range(int(POLL_SECONDS / POLL_STEP)):
        if await condition():
            return True
        await asyncio.sleep(POLL_STEP)
    return await condition()


async def count(engine: AsyncEngine, model: type, *where: Any) -> int:
    async with engine.connect() as connection:
        statement = select(func.count()).select_from(model).where(*where)
        return int((await connection.execute(statement)).scalar_one())


# --- 1. the same inbound message to two processes ------------------------------------------


def sign(*parts: str) -> str:
    """WeChat's signature: sha1 over the sorted, concatenated parts, in hex."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def text_xml(source: str, content: str, create_time: int, msg_id: int) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<FromUserName><![CDATA[{source}]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )


async def post_signed(client: TestClient, xml: str, timestamp: int, nonce: str) -> dict[str, Any]:
    """Post a plain-mode message as the platform does; the reply's fields."""
    ts = str(timestamp)
    query = {"signature": sign(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce}
    response = await client.post("/wechat", params=query, data=xml)
    body = await response.text()
    assert response.status == 200, body
    return dict(xmltodict.parse(body)["xml"])


async def test_same_wechat_message_to_two_processes_is_handled_once(
    aiohttp_client: AiohttpClient, processes: Processes
) -> None:
    clock = FixedClock(MORNING)
    settings = make_settings(processes.url, bind_proof="name")
    # Like `serve --workers`: the schema was migrated once, before the processes started.
    first = await aiohttp_client(
        create_app(settings, clock, run_migrations=False, background=False)
    )
    second = await aiohttp_client(
        create_app(settings, clock, run_migrations=False, background=False)
    )
    await seed(first.app[CONVERSATION])
    now = int(clock.now().timestamp())
    bound = await post_signed(first, text_xml(MEMBER, "绑定 1001 张三", now, 1), now, "100")
    assert "绑定成功" in bound["Content"]
    engine: AsyncEngine = first.app[ENGINE]

    for number in range(1, 4):
        msg_id = 6_054_768_590 + number
        xml = text_xml(MEMBER, "学习 30", now, msg_id)
        # The platform's retry reaches both processes at the same time (its own nonce each).
        replies = await asyncio.gather(
            post_signed(first, xml, now, f"{number}1"),
            post_signed(second, xml, now, f"{number}2"),
        )

        assert replies[0] == replies[1]
        assert replies[0]["ToUserName"] == MEMBER
        assert f"{30 * number}/120" in replies[0]["Content"]
        assert await count(engine, StudyEntry) == number
        assert await count(engine, ProcessedMessage, ProcessedMessage.key == str(msg_id)) == 1


# --- 2. two dispatchers share one outbox ---------------------------------------------------


def member_openid(number: int) -> str:
    return f"openid-{number:05d}"


def reminder_text(number: int) -> str:
    return f"第 {number} 位成员，今天还差 120 分钟"


async def add_members_with_reminders(engine: AsyncEngine, clock: FixedClock, total: int) -> None:
    """`total` members bound on WeChat with open windows, each with one due reminder."""
    now = clock.now()
    async with engine.begin() as connection:
        branch_id = (
            await connection.execute(insert(Branch).values(name="扩容支部").returning(Branch.id))
        ).scalar_one()
        await connection.execute(
            insert(Member),
            [
                {
                    "roster_id": f"{number:05d}",
                    "name": f"成员{number}",
                    "branch_id": branch_id,
                    "role": Role.MEMBER.value,
                    "joined_at": now,
                    "reminder_enabled": True,
                    "reminder_time": None,
                }
                for number in range(total)
            ],
        )
        rows = await connection.execute(select(Member.roster_id, Member.id))
        ids: dict[str, int] = {roster_id: member_id for roster_id, member_id in rows}
        await connection.execute(
            insert(Binding),
            [
                {
                    "channel": "wechat",
                    "external_id": member_openid(number),
                    "member_id": ids[f"{number:05d}"],
                    "reachable": True,
                    "bound_at": now,
                    "window_until": now + dt.timedelta(hours=48),
                    "window_budget": 5,
                    "window_used": 0,
                }
                for number in range(total)
            ],
        )
    day = today(clock)
    pushes = [
        Push(
            ids[f"{number:05d}"],
            PushKind.REMINDER,
            "study",
            day,
            reminder_text(number),
            "学习提醒",
            now,
        )
        for number in range(total)
    ]
    async with transaction(session_factory(engine)) as session:
        assert await outbox.enqueue(session, pushes, now) == total


async def test_two_dispatchers_drain_the_outbox_once(
    aiohttp_server: ServerFactory, processes: Processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small claims, so that neither dispatcher can drain everything in one or two rounds.
    monkeypatch.setattr(bot.dispatcher, "BATCH_MEMBERS", 50)
    clock = FixedClock(MORNING)  # stands still: no lease runs out during the test
    fake = FakeWeChat(delay=0.002)
    server = await aiohttp_server(fake.app())
    settings = make_settings(
        processes.url,
        wechat_appid=fake.appid,
        wechat_secret=fake.secret,
        wechat_api_base=str(server.make_url("")).rstrip("/"),
        delivery_rate=100_000,
        delivery_concurrency=10,
    )
    first_engine, second_engine = processes.engine(), processes.engine()
    await add_members_with_reminders(first_engine, clock, MEMBERS)

    async with aiohttp.ClientSession() as http_a, aiohttp.ClientSession() as http_b:
        dispatchers = []
        for engine, http in ((first_engine, http_a), (second_engine, http_b)):
            sessions = session_factory(engine)
            api = WeChatApi(
                http,
                sessions,
                clock,
                base=settings.wechat_api_base,
                appid=fake.appid,
                secret=fake.secret,
            )
            dispatchers.append(Dispatcher(settings, clock, sessions, api))
        done_a, done_b = await asyncio.wait_for(
            asyncio.gather(dispatchers[0].run_once(), dispatchers[1].run_once()), RUN_TIMEOUT
        )

    # Both did part of the work, and together all of it.
    assert done_a["sent"] > 0, (done_a, done_b)
    assert done_b["sent"] > 0, (done_a, done_b)
    assert done_a + done_b == Counter(sent=MEMBERS)
    # Every member received exactly one message: their own.
    texts: dict[str, list[str]] = {}
    for body in fake.custom_sent:
        texts.setdefault(body["touser"], []).append(body["text"]["content"])
    assert len(fake.custom_sent) == MEMBERS
    assert texts == {member_openid(n): [reminder_text(n)] for n in range(MEMBERS)}
    # Every row ended sent, after exactly one delivery attempt.
    async with first_engine.connect() as connection:
        by_state = select(OutboxItem.state, func.count()).group_by(col(OutboxItem.state))
        states = {state: n for state, n in await connection.execute(by_state)}
        by_item = select(DeliveryAttempt.outbox_id, func.count()).group_by(
            col(DeliveryAttempt.outbox_id)
        )
        attempts = [(item, n) for item, n in await connection.execute(by_item)]
    assert states == {OutboxState.SENT.value: MEMBERS}
    assert len(attempts) == MEMBERS
    assert {n for _, n in attempts} == {1}
    # The two processes shared one access token, fetched once.
    assert len(fake.calls(STABLE_TOKEN)) == 1


async def test_a_claim_skips_the_members_another_dispatcher_holds(processes: Processes) -> None:
    """The claim underneath the test above, made deterministic: while one dispatcher's claim
    transaction holds the most urgent members' rows, another's claim takes the next members
    (it must not come back empty while other items are due)."""
    clock = FixedClock(MORNING)
    lease = dt.timedelta(minutes=2)
    first_engine, second_engine = processes.engine(), processes.engine()
    await add_members_with_reminders(first_engine, clock, 20)

    async with transaction(session_factory(first_engine)) as holding:
        held = await outbox.claim_due(holding, clock.now(), 5, lease)
        assert len({item.member_id for item in held}) == 5
        # The first claim is still open (its rows locked) when the second one runs.
        async with transaction(session_factory(second_engine)) as session:
            taken = await asyncio.wait_for(
                outbox.claim_due(session, clock.now(), 5, lease), RUN_TIMEOUT
            )

    assert len({item.member_id for item in taken}) == 5
    assert {item.id for item in taken}.isdisjoint(item.id for item in held)


# --- 3. leader election ------------------------------------------------------------------


@dataclass
class Calls:
    """What a Leadership told its process."""

    elected: int = 0
    deposed: int = 0

    def on_elected(self) -> None:
        self.elected += 1

    def on_deposed(self) -> None:
        self.deposed += 1


def candidate(engine: AsyncEngine) -> tuple[Leadership, Calls]:
    calls = Calls()
    return Leadership(engine, calls.on_elected, calls.on_deposed), calls


async def elect_one(
    processes: Processes,
) -> tuple[tuple[Leadership, Calls], tuple[Leadership, Calls]]:
    """Two candidates on two engines try at the same time; (leader, follower)."""
    first, second = candidate(processes.engine()), candidate(processes.engine())
    won = await asyncio.gather(first[0].try_once(), second[0].try_once())
    assert sorted(won) == [False, True]
    leader, follower = (first, second) if won[0] else (second, first)
    assert leader[0].leading and not follower[0].leading
    assert (leader[1].elected, leader[1].deposed) == (1, 0)
    assert (follower[1].elected, follower[1].deposed) == (0, 0)
    # The follower keeps losing while the leader holds.
    assert await follower[0].try_once() is False
    assert await leader[0].try_once() is True
    assert leader[1].elected == 1  # still holding is not a second election
    return leader, follower


async def lock_holders(engine: AsyncEngine) -> list[int]:
    """Backend pids holding the scheduler's advisory lock in this database."""
    statement = text(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND objid = :objid AND classid = :classid"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    params = {"objid": LOCK_KEY & 0xFFFFFFFF, "classid": LOCK_KEY >> 32}
    async with engine.connect() as connection:
        return [int(pid) for pid in (await connection.execute(statement, params)).scalars()]


async def test_one_leader_and_a_handover_on_resign(processes: Processes) -> None:
    (leader, leader_calls), (follower, follower_calls) = await elect_one(processes)
    try:
        await leader.resign()
        assert not leader.leading
        assert leader_calls.deposed == 1

        assert await follower.try_once() is True
        assert follower_calls.elected == 1
        assert await leader.try_once() is False
        assert await leader.try_once() is False
        assert (leader_calls.elected, leader_calls.deposed) == (1, 1)
        assert await follower.try_once() is True
        assert (follower_calls.elected, follower_calls.deposed) == (1, 0)
    finally:
        await leader.resign()
        await follower.resign()


async def test_a_dead_leaders_lock_passes_to_the_other_process(processes: Processes) -> None:
    (leader, leader_calls), (follower, follower_calls) = await elect_one(processes)
    observer = processes.engine()
    try:
        holders = await lock_holders(observer)
        assert len(holders) == 1
        # The leader's process dies: its lock connection is killed from a third connection.
        async with observer.connect() as connection:
            killed = await connection.execute(
                text("SELECT pg_terminate_backend(:pid)"), {"pid": holders[0]}
            )
            assert killed.scalar_one() is True
            await connection.commit()

        # The backend exits asynchronously; the follower's next tries take the lock.
        assert await wait_until(follower.try_once)
        assert follower.leading
        assert (follower_calls.elected, follower_calls.deposed) == (1, 0)
        assert await lock_holders(observer) not in ([], holders)

        # The old leader notices it lost the lead, and does not lead again.
        assert await leader.try_once() is False
        assert not leader.leading
        assert (leader_calls.elected, leader_calls.deposed) == (1, 1)
        assert await leader.try_once() is False
        assert (leader_calls.elected, leader_calls.deposed) == (1, 1)
        assert await follower.try_once() is True
        assert (follower_calls.elected, follower_calls.deposed) == (1, 0)
    finally:
        await leader.resign()
        await follower.resign()


def capture_schedulers(monkeypatch: pytest.MonkeyPatch) -> list[AsyncIOScheduler]:
    """Record every scheduler the apps build (bot.app imported build_scheduler by name)."""
    built: list[AsyncIOScheduler] = []
    real = bot.app.build_scheduler

    def capture(settings: Settings, push_jobs: PushJobs) -> AsyncIOScheduler:
        scheduler = real(settings, push_jobs)
        built.append(scheduler)
        return scheduler

    monkeypatch.setattr(bot.app, "build_scheduler", capture)
    return built


async def test_two_servers_run_one_scheduler(
    aiohttp_client: AiohttpClient, processes: Processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = capture_schedulers(monkeypatch)
    clock = FixedClock(MORNING)
    settings = make_settings(processes.url, scheduler="on")

    # Like `serve --workers`: migrated once before, then the workers start together.
    # (Two concurrent alembic upgrades in one Python process clash on alembic's global
    # context; separate processes don't share it.)
    clients = await asyncio.gather(
        aiohttp_client(create_app(settings, clock, run_migrations=False)),
        aiohttp_client(create_app(settings, clock, run_migrations=False)),
    )

    assert len(built) == 2
    assert sorted(scheduler.state for scheduler in built) == [STATE_STOPPED, STATE_RUNNING]
    assert [scheduler.running for scheduler in built].count(True) == 1
    assert len(await lock_holders(processes.engine())) == 1
    for client in clients:
        assert (await client.get("/healthz")).status == 200

    for client in clients:
        await client.close()
    assert not any(scheduler.running for scheduler in built)
    assert await lock_holders(processes.engine()) == []  # resigned at shutdown


# --- 4. a job repeated by a new leader ---------------------------------------------------


async def test_reminders_repeated_by_another_process_are_enqueued_once(
    processes: Processes,
) -> None:
    clock = FixedClock(EVENING)
    settings = make_settings(processes.url)
    engine_a, engine_b = processes.engine(), processes.engine()
    conversation = build_conversation(settings, clock, engine_a)
    await seed(conversation, content=False)
    wechat = Chat(conversation, channel="wechat")
    for row in ROSTER:
        await wechat.bind(row.member_id)
    process_a = PushJobs(settings, clock, session_factory(engine_a))
    process_b = PushJobs(settings, clock, session_factory(engine_b))

    # Process A ran the sweep and died; B, elected, runs it again the same evening.
    assert (await process_a.reminders()).count == len(ROSTER)
    assert (await process_b.reminders()).count == 0

    async def members_in_outbox() -> Counter[int]:
        async with engine_b.connect() as connection:
            rows = await connection.execute(select(OutboxItem.member_id))
            return Counter(rows.scalars())

    first_day = await members_in_outbox()
    assert len(first_day) == len(ROSTER)
    assert set(first_day.values()) == {1}

    # The next evening both run it at once (an old leader stalled, not dead): still once.
    clock.set(EVENING + dt.timedelta(days=1))
    done = await asyncio.wait_for(
        asyncio.gather(process_a.reminders(), process_b.reminders()), RUN_TIMEOUT
    )
    assert sum(enqueued.count for enqueued in done) == len(ROSTER)
    both_days = await members_in_outbox()
    assert len(both_days) == len(ROSTER)
    assert set(both_days.values()) == {2}


# --- 5. the access token is fetched once across processes -------------------------------


async def test_token_refresh_happens_once_across_processes(
    aiohttp_server: ServerFactory, processes: Processes
) -> None:
    clock = FixedClock(MORNING)
    fake = FakeWeChat(delay=0.2)  # a slow fetch: the second process asks while it runs
    server = await aiohttp_server(fake.app())
    base = str(server.make_url("")).rstrip("/")

    async with aiohttp.ClientSession() as http_a, aiohttp.ClientSession() as http_b:
        apis = [
            WeChatApi(
                http,
                session_factory(processes.engine()),
                clock,
                base=base,
                appid=fake.appid,
                secret=fake.secret,
            )
            for http in (http_a, http_b, http_a)
        ]
        tokens = await asyncio.wait_for(
            asyncio.gather(apis[0].token(), apis[1].token()), RUN_TIMEOUT
        )
        # A third process started later reads the shared token without a fetch.
        later = await apis[2].token()

    assert len(fake.calls(STABLE_TOKEN)) == 1
    assert tokens[0] == tokens[1] == later == fake.current_token
    engine = processes.engines[0]
    assert await count(engine, AccessToken) == 1
    async with engine.connect() as connection:
        stored = (await connection.execute(select(AccessToken.token))).scalar_one()
    assert stored == fake.current_token


# --- 6. --workers needs PostgreSQL (no PostgreSQL needed) --------------------------------


def test_serve_with_workers_on_sqlite_is_one_line_naming_postgresql(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "QIYI_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'qiyi.db'}",
        "QIYI_WECHAT_TOKEN": TOKEN,
        "QIYI_SCHEDULER": "off",
    }
    command = [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", "0"]
    process = subprocess.run(
        [*command, "--workers", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )

    assert process.returncode == 2, process.stderr
    assert "Traceback" not in process.stderr
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1, process.stderr
    assert "PostgreSQL" in lines[0]
    assert "workers" not in process.stdout  # nothing started
