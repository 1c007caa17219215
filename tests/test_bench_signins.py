"""bench/signins.py kept from rotting: its seeding and a tiny run of its crowd (20 members)
against the real app on aiohttp's test server, in plain and safe mode, on both databases —
and its check catches what it is there to catch (a wrong reply, a lost sign-in)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bench.signin_crowd import (
    LENGTH_MINUTES,
    SignIns,
    bench_settings,
    burst,
    kept,
    seed,
    steady,
    warm_up,
)
from bot.app import create_app
from bot.clock import FixedClock
from data.db import session_factory, transaction
from data.models import Attendance
from tests.channels.test_wechat import AppClientFactory

MEMBERS = 20


@pytest.mark.parametrize("safe", [False, True], ids=["plain", "safe"])
async def test_the_crowd_signs_in_once_and_the_check_sees_a_loss(
    aiohttp_client: AppClientFactory,
    database_url: str,
    engine: AsyncEngine,
    clock: FixedClock,
    safe: bool,
) -> None:
    seeded = await seed(database_url, MEMBERS, clock)
    assert seeded.expected == MEMBERS + 1  # everyone: the organiser too
    client: TestClient = await aiohttp_client(
        create_app(bench_settings(database_url, safe=safe), clock)
    )
    base = str(client.make_url("")).rstrip("/")
    signins = SignIns(seeded, clock, safe=safe)
    assert await warm_up(base, signins, 5, 2) == 5

    first = await steady(base, signins, MEMBERS, seconds=0.2)
    assert (first.sent, len(first.latencies), first.errors) == (MEMBERS, MEMBERS, 0), first.sample
    found = await kept(database_url, seeded.activity_id)
    assert (found.present, found.present_by_code, found.study_entries) == (MEMBERS,) * 3
    assert found.study_minutes == MEMBERS * LENGTH_MINUTES
    assert found.lost(MEMBERS) == []

    # Again, over connections: every reply is now "signed in before", each one an error.
    again = await burst(base, signins, MEMBERS, connections=4)
    assert (again.sent, again.errors) == (MEMBERS, MEMBERS)
    assert "已签到过" in again.sample
    assert (await kept(database_url, seeded.activity_id)).lost(MEMBERS) == []

    async with transaction(session_factory(engine)) as session:
        one = (await session.exec(select(Attendance).limit(1))).one()
        await session.delete(one)
    lost = (await kept(database_url, seeded.activity_id)).lost(MEMBERS)
    assert lost == [
        f"present attendances: {MEMBERS - 1} (expected {MEMBERS})",
        f"signed in by code: {MEMBERS - 1} (expected {MEMBERS})",
    ]
