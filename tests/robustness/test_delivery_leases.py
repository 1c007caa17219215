"""Leases: one implementation (`data.leases`) for the outbox's items and the groups' posts,
renewed while a paced batch is sent, and never sent by a dispatcher that lost them.

Before, a QQ batch of 200 members paced 1.5 s apart outlasted the 120-second lease, and a
second dispatcher claimed and sent again what the first was still sending.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import func, insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.channels.onebot_api import OneBotApi
from bot.clock import FixedClock, today
from bot.conversation import Conversation
from bot.dispatcher import Dispatcher
from data import groups, leases, migrate, outbox
from data.db import create_engine, session_factory, transaction
from data.models import (
    Binding,
    Branch,
    DeliveryAttempt,
    GroupPost,
    Member,
    OutboxItem,
    OutboxState,
    PushKind,
    Role,
)
from data.outbox import Push
from tests.conftest import MORNING, _reset_postgres, make_settings
from tests.fakes.onebot import FakeOneBot
from tests.queries import member_id

ServerFactory = Callable[..., Awaitable[TestServer]]
Claim = Callable[[AsyncSession, dt.datetime, int, dt.timedelta], Awaitable[list[leases.Row]]]

LEASE = dt.timedelta(seconds=120)
CLAIMS: dict[leases.Table, Claim] = {
    OutboxItem: outbox.claim_due,  # type: ignore[dict-item]
    GroupPost: groups.claim_due,  # type: ignore[dict-item]
}


# --- the shared implementation, once for both tables -----------------------------------------


async def add_three_due(
    conversation: Conversation, table: leases.Table, due: dt.datetime | None = None
) -> None:
    now = conversation.clock.now()
    due = due or now
    day = today(conversation.clock)
    if table is OutboxItem:
        ids = [await member_id(conversation, r) for r in ("1001", "1002", "1003")]
        async with transaction(conversation.sessions) as session:
            pushes = [Push(m, PushKind.REMINDER, "study", day, "提醒", "提醒", due) for m in ids]
            assert await outbox.enqueue(session, pushes, now) == 3
    else:
        posts = [
            groups.Post("qq", str(n), "news", "article:1", day, "资讯", due) for n in (11, 12, 13)
        ]
        async with transaction(conversation.sessions) as session:
            assert await groups.enqueue(session, posts, now) == 3


async def claim(conversation: Conversation, table: leases.Table) -> leases.Lease:
    now = conversation.clock.now()
    async with transaction(conversation.sessions) as session:
        rows = await CLAIMS[table](session, now, 10, LEASE)
    return leases.Lease.over(table, rows, now + LEASE)


async def table_rows(conversation: Conversation, table: leases.Table) -> list[leases.Row]:
    async with conversation.sessions() as session:
        return list(await session.exec(select(table).order_by(col(table.id))))


@pytest.mark.parametrize("table", [OutboxItem, GroupPost], ids=["outbox", "group-posts"])
async def test_a_lease_is_renewed_by_its_holder_and_lost_to_a_later_claim(
    conversation: Conversation, table: leases.Table
) -> None:
    clock = conversation.clock
    assert isinstance(clock, FixedClock)
    await add_three_due(conversation, table)
    first = await claim(conversation, table)
    assert len(first.ids) == 3
    assert {r.state for r in await table_rows(conversation, table)} == {"sending"}
    assert await claim(conversation, table) == leases.Lease(table, clock.now() + LEASE, set())

    # The holder renews before the end: nobody may take the rows at the old end.
    clock.advance(seconds=100)
    async with transaction(conversation.sessions) as session:
        first = await leases.renew(session, first, clock.now(), LEASE)
    assert len(first.ids) == 3 and first.until == clock.now() + LEASE
    assert {r.lease_until for r in await table_rows(conversation, table)} == {first.until}
    clock.advance(seconds=30)  # past the first lease's end, inside the renewed one
    assert (await claim(conversation, table)).ids == set()

    # Not renewed in time: another claim takes every row over…
    clock.set(first.until + dt.timedelta(seconds=1))
    second = await claim(conversation, table)
    assert second.ids == first.ids
    # …and the first holder can neither renew nor settle them any more.
    async with transaction(conversation.sessions) as session:
        assert (await leases.renew(session, first, clock.now(), LEASE)).ids == set()
    sent = [
        leases.done(row, OutboxState.SENT, clock.now())
        for row in await table_rows(conversation, table)
    ]
    async with transaction(conversation.sessions) as session:
        assert await leases.settle(session, first, sent) == set()
    rows = await table_rows(conversation, table)
    assert {(r.state, r.lease_until) for r in rows} == {("sending", second.until)}

    # The new holder settles: done, retried after the backoff, given back untried.
    rng = random.Random(3)
    retries = leases.Retries(max_attempts=2, base_seconds=60, rng=rng)
    now = clock.now()
    done, retried, untried = rows
    changes = [
        leases.done(done, OutboxState.SENT, now),
        retries.after(retried, now, "-1 system error"),
        leases.given_back(untried),
    ]
    async with transaction(conversation.sessions) as session:
        assert await leases.settle(session, second, changes) == second.ids
    done, retried, untried = await table_rows(conversation, table)
    assert (done.state, done.done_at, done.lease_until) == ("sent", now, None)
    assert (retried.state, retried.attempts, retried.last_error) == (
        "pending",
        1,
        "-1 system error",
    )
    assert now + dt.timedelta(seconds=30) <= retried.due_at <= now + dt.timedelta(seconds=90)
    assert (untried.state, untried.attempts, untried.lease_until) == ("pending", 0, None)
    assert untried.due_at < now  # due as it was: claimed again at once

    # The last try used up: failed, with its count.
    retried.attempts = 1
    assert retries.after(retried, now, "-1 again") | {"id": None} == {
        "id": None,
        "state": "failed",
        "lease_until": None,
        "done_at": now,
        "last_error": "-1 again",
        "attempts": 2,
    }
    # Only the untried row is due now; the retried one waits for its backoff.
    assert (await claim(conversation, table)).ids == {untried.id}


@pytest.mark.parametrize("table", [OutboxItem, GroupPost], ids=["outbox", "group-posts"])
async def test_rows_due_later_are_not_claimed_early(
    conversation: Conversation, table: leases.Table
) -> None:
    clock = conversation.clock
    assert isinstance(clock, FixedClock)
    due = clock.now() + dt.timedelta(minutes=5)
    await add_three_due(conversation, table, due)
    assert (await claim(conversation, table)).ids == set()
    clock.set(due - dt.timedelta(seconds=1))
    assert (await claim(conversation, table)).ids == set()
    clock.advance(seconds=1)
    assert len((await claim(conversation, table)).ids) == 3


# --- 300 paced QQ pushes, two dispatchers, PostgreSQL ----------------------------------------

MEMBERS = 300
FIRST_QQ = 30_000_000
RUN_TIMEOUT = 300.0  # a deadlock fails the test instead of hanging it


@pytest.fixture
async def two_engines(pg_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    await _reset_postgres(pg_url)
    first, second = create_engine(pg_url), create_engine(pg_url)
    await migrate.upgrade(first)
    yield first, second
    await first.dispose()
    await second.dispose()


async def add_qq_members_with_reminders(engine: AsyncEngine, clock: FixedClock) -> None:
    now = clock.now()
    async with engine.begin() as connection:
        branch = await connection.execute(
            insert(Branch).values(name="群聊支部").returning(Branch.id)
        )
        branch_id = branch.scalar_one()
        members = [
            {
                "roster_id": f"{n:05d}",
                "name": f"成员{n}",
                "branch_id": branch_id,
                "role": Role.MEMBER.value,
                "joined_at": now,
                "reminder_enabled": True,
                "reminder_time": None,
            }
            for n in range(MEMBERS)
        ]
        await connection.execute(insert(Member), members)
        ids = dict((await connection.execute(select(Member.roster_id, Member.id))).all())
        bindings = [
            {
                "channel": "qq",
                "external_id": str(FIRST_QQ + n),
                "member_id": ids[f"{n:05d}"],
                "reachable": True,
                "bound_at": now,
                "window_until": None,
                "window_budget": 0,
                "window_used": 0,
            }
            for n in range(MEMBERS)
        ]
        await connection.execute(insert(Binding), bindings)
    day = today(clock)
    pushes = [
        Push(ids[f"{n:05d}"], PushKind.REMINDER, "study", day, f"提醒 {n}", "学习提醒", now)
        for n in range(MEMBERS)
    ]
    async with transaction(session_factory(engine)) as session:
        assert await outbox.enqueue(session, pushes, now) == MEMBERS


async def test_paced_qq_pushes_outlast_the_lease_and_go_once_with_two_dispatchers(
    aiohttp_server: ServerFactory, two_engines: tuple[AsyncEngine, AsyncEngine]
) -> None:
    clock = FixedClock(MORNING)
    start = clock.now()

    async def paced(seconds: float) -> None:
        # The pacing takes the time it should on the test's clock, and none on the wall's.
        clock.advance(seconds=seconds)
        await asyncio.sleep(0)

    def monotonic() -> float:
        return clock.now().timestamp()

    fake = FakeOneBot(access_token="tok")
    server = await aiohttp_server(fake.app())
    settings = make_settings(
        "postgresql+asyncpg://unused/unused",
        wechat_token=None,
        onebot_api_url=str(server.make_url("")),
        onebot_access_token="tok",
        onebot_send_interval_seconds=1.5,
        delivery_lease_seconds=int(LEASE.total_seconds()),
        delivery_rate=100_000,
    )
    await add_qq_members_with_reminders(two_engines[0], clock)

    async with aiohttp.ClientSession() as http_a, aiohttp.ClientSession() as http_b:
        dispatchers = [
            Dispatcher(
                settings,
                clock,
                session_factory(engine),
                None,
                rng=random.Random(n),
                onebot=OneBotApi(http, settings, sleep=paced, monotonic=monotonic),
            )
            for n, (engine, http) in enumerate(zip(two_engines, (http_a, http_b), strict=True))
        ]
        done = await asyncio.wait_for(
            asyncio.gather(*(dispatcher.run_once() for dispatcher in dispatchers)), RUN_TIMEOUT
        )

    # The sends took far longer than a lease: without renewal the rows would have been
    # claimed again mid-batch.
    assert clock.now() - start > 3 * LEASE
    assert done[0] + done[1] == Counter(sent=MEMBERS)
    targets = Counter(sent.target for sent in fake.private_messages())
    assert targets == Counter(range(FIRST_QQ, FIRST_QQ + MEMBERS))  # each exactly once
    async with two_engines[1].connect() as connection:
        states = dict(
            (
                await connection.execute(
                    select(OutboxItem.state, func.count()).group_by(col(OutboxItem.state))
                )
            ).all()
        )
        attempts = (
            await connection.execute(
                select(DeliveryAttempt.outbox_id, func.count()).group_by(
                    col(DeliveryAttempt.outbox_id)
                )
            )
        ).all()
    assert states == {"sent": MEMBERS}
    assert len(attempts) == MEMBERS and {n for _, n in attempts} == {1}
