"""bench/worker_memory.py's pure parts: the bulk seeding writes what the product's functions
write, and the memory of the server's processes is read and judged right."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bench.webhook import BRANCHES, openid_of, roster
from bench.worker_memory import (
    Measured,
    Memory,
    group_memory,
    parse_status,
    process_role,
    rows,
    seed_bulk,
    verdicts,
)
from bot.clock import FixedClock
from bot.messages import Sender
from data import members, migrate
from data.db import create_engine, session_factory, transaction
from data.models import Binding, Branch, Member

COUNT = 45  # more members than branches: some branches hold two


async def migrated(path: Path) -> AsyncEngine:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await migrate.upgrade(engine)
    return engine


async def seed_by_the_product(engine: AsyncEngine, clock: FixedClock) -> None:
    people = roster(COUNT)
    sessions = session_factory(engine)
    async with transaction(sessions) as session:
        await members.upsert_roster(session, [row for _, row in people], clock.now())
    async with transaction(sessions) as session:
        found = {m.roster_id: m for m in await session.exec(select(Member))}
        for openid, row in people:
            member = found[row.member_id]
            await members.bind(session, Sender("wechat", openid), member, clock.now())


async def stored(engine: AsyncEngine) -> tuple[list[tuple], list[tuple]]:
    """Every member and binding, by roster id, without the ids the database chose."""
    async with transaction(session_factory(engine)) as session:
        branch = {b.id: b.name for b in await session.exec(select(Branch))}
        people = {m.id: m for m in await session.exec(select(Member))}
        member_rows = sorted(
            (
                m.roster_id,
                m.name,
                branch[m.branch_id],
                m.role,
                m.joined_at,
                m.reminder_enabled,
                m.reminder_time,
                m.phone_tail,
                m.left_on,
            )
            for m in people.values()
        )
        binding_rows = sorted(
            (
                people[b.member_id].roster_id,
                b.channel,
                b.external_id,
                b.reachable,
                b.bound_at,
                b.window_until,
                b.window_budget,
                b.window_used,
            )
            for b in await session.exec(select(Binding))
        )
    return member_rows, binding_rows


async def test_bulk_seeding_writes_the_rows_the_product_writes(tmp_path: Path, clock: FixedClock):
    bulk, product = await migrated(tmp_path / "bulk.db"), await migrated(tmp_path / "product.db")
    try:
        await seed_bulk(bulk, COUNT, clock.now())
        await seed_by_the_product(product, clock)
        in_bulk, by_product = await stored(bulk), await stored(product)
        assert len(in_bulk[0]) == len(in_bulk[1]) == COUNT
        assert in_bulk == by_product

        # The server finds every bulk-seeded account bound, to its own member.
        async with transaction(session_factory(bulk)) as session:
            for i in (0, len(BRANCHES), COUNT - 1):
                state = await members.sender_state(session, Sender("wechat", openid_of(i)))
                assert state is not None and state.member.roster_id == str(100_000 + i)
                assert state.member.branch_id is not None
            stranger = await members.sender_state(session, Sender("wechat", openid_of(COUNT)))
            assert stranger is None
    finally:
        await bulk.dispose()
        await product.dispose()


STATUS = """Name:\tqiyi
Umask:\t0022
State:\tS (sleeping)
VmPeak:\t  912344 kB
VmSize:\t  850120 kB
VmHWM:\t  180224 kB
VmRSS:\t  170240 kB
RssAnon:\t  120000 kB
Threads:\t3
"""


def test_the_resident_set_and_its_peak_are_read_from_a_status_text():
    memory = parse_status(STATUS)
    assert memory == Memory(rss_kib=170_240, peak_kib=180_224)
    assert memory.rss_mib == pytest.approx(166.25) and memory.peak_mib == pytest.approx(176.0)
    # A zombie's status has no memory lines.
    assert parse_status("Name:\tqiyi\nState:\tZ (zombie)\n") is None


def test_the_processes_of_the_server_are_told_apart():
    spawn = "python -c from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5)"
    tracker = "python -c from multiprocessing.resource_tracker import main;main(4)"
    serve = ".venv/bin/qiyi serve --host 127.0.0.1 --port 8000"
    assert process_role(10, 10, serve, workers=1) == "worker"
    assert process_role(10, 10, serve, workers=2) == "arbiter"
    assert process_role(11, 10, serve, workers=2) == "worker"
    assert process_role(12, 10, spawn, workers=2) == "helper"
    assert process_role(13, 10, tracker, workers=1) == "tracker"


def test_this_process_is_read_as_a_worker_of_its_group():
    import os

    found = group_memory(os.getpgrp(), workers=1)
    mine = parse_status(Path(f"/proc/{os.getpid()}/status").read_text())
    assert mine is not None
    assert any(abs(m.rss_kib - mine.rss_kib) < 64 * 1024 for m in found["worker"])


def measured(size: int, rss_mib: float, helper_mib: float = 150.0) -> Measured:
    worker = Memory(int(rss_mib * 1024), int(rss_mib * 1024) + 2048)
    helper = Memory(int(helper_mib * 1024), int(helper_mib * 1024))
    result = Measured(size, "SQLite", 1, before=[worker], after={"worker": [worker]})
    result.after["helper"] = [helper]
    result.sent.messages = 20_000
    return result


def test_flat_is_at_most_a_tenth_more_at_the_largest_size():
    flat = [measured(1_000, 160.0), measured(10_000, 170.0), measured(100_000, 176.0)]
    assert verdicts(flat) == [
        "SQLite: worker RSS after the run at 100,000 / at 1,000 members = 176.0 / 160.0 MiB "
        "= ×1.10 (goal: flat, ≤ ×1.10): met"
    ]
    grown = [measured(1_000, 160.0), measured(100_000, 177.0)]
    assert verdicts(grown)[0].endswith("×1.11 (goal: flat, ≤ ×1.10): MISSED")
    assert verdicts([measured(1_000, 160.0)]) == [
        "SQLite: not judged (fewer than two sizes measured)"
    ]
    assert rows(flat)[2] == ["100,000", "SQLite", "20,000", "0", "176.0", "176.0", "178.0", "150.0"]
