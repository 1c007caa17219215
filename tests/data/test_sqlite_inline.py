"""SQLite on the loop's thread (`data.sqlite_inline`): waiting for another process's write
lock keeps the event loop serving, and gives up after the busy timeout."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from data import migrate, processed, sqlite_inline
from data.db import create_engine, inline_twin, session_factory, transaction
from data.models import ProcessedMessage
from tests.conftest import MORNING


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "qiyi.db"


@pytest.fixture
def other_process(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection of "another process" (the CLI, say) on the same file."""
    connection = sqlite3.connect(path, isolation_level=None)
    yield connection
    connection.close()


async def _migrated(url: str, *, inline: bool) -> AsyncEngine:
    engine = create_engine(url, inline=inline)
    await migrate.upgrade(engine)
    return engine


async def _claim(engine: AsyncEngine, key: str) -> None:
    async with transaction(session_factory(engine)) as session:
        await processed.record(session, "test", key, "", MORNING)


async def _keys(engine: AsyncEngine) -> list[str]:
    async with session_factory(engine)() as session:
        return list((await session.exec(select(ProcessedMessage.key))).all())


async def _still_waiting(task: asyncio.Task[object]) -> None:
    """50 turns of the loop later (each one this coroutine ran: the loop is not held), `task`
    is still waiting for the lock, not failed."""
    turns = 0
    for _ in range(50):
        await asyncio.sleep(0)
        turns += 1
    assert turns == 50
    assert not task.done()


async def test_waiting_for_the_write_lock_leaves_the_loop_free(
    path: Path, other_process: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Retries on the next loop turn instead of after 1 ms: no wall clock in the test.
    monkeypatch.setattr(sqlite_inline, "FIRST_RETRY_S", 0.0)
    engine = await _migrated(f"sqlite+aiosqlite:///{path}", inline=True)
    try:
        other_process.execute("BEGIN IMMEDIATE")
        waiting = asyncio.create_task(_claim(engine, "m-1"))
        await _still_waiting(waiting)
        other_process.execute("COMMIT")
        await waiting
        assert await _keys(engine) == ["m-1"]
    finally:
        await engine.dispose()


async def test_gives_up_after_the_busy_timeout_and_writes_nothing(
    path: Path, other_process: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = await _migrated(f"sqlite+aiosqlite:///{path}", inline=True)
    monkeypatch.setattr(sqlite_inline, "BUSY_TIMEOUT_S", 0)
    impatient = create_engine(f"sqlite+aiosqlite:///{path}", inline=True)
    try:
        other_process.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError, match="locked"):
            await _claim(impatient, "m-1")
        assert impatient.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        with pytest.raises(OperationalError, match="locked"):
            await _keys(impatient)  # a plain session (a read) as well
        other_process.execute("ROLLBACK")
        assert await _keys(engine) == []
        await _claim(impatient, "m-2")  # the same engine works once the lock is free
        assert await _keys(engine) == ["m-2"]
    finally:
        await impatient.dispose()
        await engine.dispose()


async def test_a_plain_session_waits_its_turn_too(
    path: Path, other_process: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session opened without `transaction` (a read) begins in its greenlet: it waits for
    another process's write lock there, the loop still serving, instead of failing at once."""
    monkeypatch.setattr(sqlite_inline, "FIRST_RETRY_S", 0.0)
    engine = await _migrated(f"sqlite+aiosqlite:///{path}", inline=True)
    try:
        await _claim(engine, "m-1")
        other_process.execute("BEGIN IMMEDIATE")
        reading = asyncio.create_task(_keys(engine))
        await _still_waiting(reading)
        other_process.execute("COMMIT")
        assert await reading == ["m-1"]
    finally:
        await engine.dispose()


async def test_other_errors_are_not_retried(path: Path) -> None:
    engine = await _migrated(f"sqlite+aiosqlite:///{path}", inline=True)
    try:
        await _claim(engine, "m-1")
        with pytest.raises(processed.AlreadyProcessed):
            await _claim(engine, "m-1")
        async with engine.connect() as connection:
            with pytest.raises(OperationalError, match="no such table"):
                await connection.exec_driver_sql("SELECT * FROM nowhere")
    finally:
        await engine.dispose()


async def test_inline_twin_shares_the_file_and_queue(path: Path) -> None:
    threaded = await _migrated(f"sqlite+aiosqlite:///{path}", inline=False)
    twin = inline_twin(threaded)
    try:
        assert twin is not threaded
        assert twin.url.database == threaded.url.database
        assert twin.dialect.driver == "inline" and threaded.dialect.driver == "aiosqlite"
        # Both engines queue their writers on one lock per file: interleaved
        # transactions from both finish, none fails with "database is locked".
        await asyncio.gather(*(_claim(threaded if n % 2 else twin, f"m-{n}") for n in range(20)))
        assert sorted(await _keys(threaded)) == sorted(f"m-{n}" for n in range(20))
    finally:
        await twin.dispose()
        await threaded.dispose()


async def test_no_twin_for_memory_or_postgresql() -> None:
    memory = create_engine("sqlite+aiosqlite://")
    server = create_engine("postgresql+asyncpg://qiyi@127.0.0.1:5432/qiyi")  # not connected
    try:
        assert inline_twin(memory) is memory
        assert inline_twin(server) is server
    finally:
        await memory.dispose()
        await server.dispose()


async def _write_pages(engine: AsyncEngine, transactions: int) -> None:
    """Transactions that each add a page or more to the write-ahead log."""
    for n in range(transactions):
        async with transaction(session_factory(engine)) as session:
            await processed.record(session, "test", f"page-{n}", "x" * 3000, MORNING)


async def test_the_message_path_leaves_wal_checkpoints_to_the_checkpointer(path: Path) -> None:
    engine = await _migrated(f"sqlite+aiosqlite:///{path}", inline=True)
    checkpointer = sqlite_inline.Checkpointer(str(path))
    try:
        await _write_pages(engine, 600)
        # Automatic checkpoints would have copied the log back every 1,000 pages and started
        # it anew: all of it is still in the log, for the checkpointer to copy in its thread.
        busy, frames, copied = await asyncio.to_thread(checkpointer.checkpoint)
        assert busy == 0
        assert frames > 1_000
        assert copied == frames
        assert len(await _keys(engine)) == 600  # nothing lost on the way
    finally:
        checkpointer.close()
        await engine.dispose()


async def test_checkpoints_off_the_loop_checkpoints_once_more_at_the_end(
    path: Path, tmp_path: Path
) -> None:
    engine = await _migrated(f"sqlite+aiosqlite:///{path}", inline=True)
    try:
        async with sqlite_inline.checkpoints_off_the_loop(engine):
            await _write_pages(engine, 50)
        # The final round copied the log into the database file: the file alone, without
        # its log, holds the 50 messages.
        alone = tmp_path / "alone.db"
        shutil.copyfile(path, alone)
        with contextlib.closing(sqlite3.connect(alone)) as copy:
            (count,) = copy.execute("SELECT count(*) FROM processedmessage").fetchone()
        assert count == 50
        threaded = create_engine(f"sqlite+aiosqlite:///{path}")
        try:  # no checkpointer for an engine that is not inline
            async with sqlite_inline.checkpoints_off_the_loop(threaded):
                pass
        finally:
            await threaded.dispose()
    finally:
        await engine.dispose()


async def _claim_when(engine: AsyncEngine, key: str, gate: asyncio.Event) -> None:
    """A transaction that claims `key`, then waits for `gate` before it commits."""
    async with transaction(session_factory(engine)) as session:
        await processed.record(session, "test", key, "", MORNING)
        await gate.wait()


# A connection left for the garbage collector is an SAWarning there; raised, it is an
# unraisable exception, which fails the test (pyproject's filterwarnings).
@pytest.mark.filterwarnings("error::sqlalchemy.exc.SAWarning")
async def test_queued_transactions_each_give_their_connection_back(path: Path) -> None:
    engine = await _migrated(f"sqlite+aiosqlite:///{path}", inline=True)
    pool: Any = engine.sync_engine.pool
    try:
        gate = asyncio.Event()
        tasks = [asyncio.create_task(_claim_when(engine, f"m-{n}", gate)) for n in range(3)]
        await _still_waiting(tasks[0])  # the first inside, the others queued
        assert pool.checkedout() == 1  # the queued ones hold nothing while they wait
        gate.set()
        await asyncio.gather(*tasks)
        assert pool.checkedout() == 0
        assert len(await _keys(engine)) == 3
    finally:
        await engine.dispose()


async def test_a_waiter_cancelled_before_its_turn_leaves_nothing_checked_out(path: Path) -> None:
    engine = await _migrated(f"sqlite+aiosqlite:///{path}", inline=True)
    pool: Any = engine.sync_engine.pool
    try:
        gate = asyncio.Event()
        first = asyncio.create_task(_claim_when(engine, "m-1", gate))
        await _still_waiting(first)
        second = asyncio.create_task(_claim(engine, "m-2"))
        await _still_waiting(second)  # queued behind the first
        gate.set()
        second.cancel()  # … and it never comes
        await first
        with contextlib.suppress(asyncio.CancelledError):
            await second
        assert pool.checkedout() == 0
        await _claim(engine, "m-3")  # the queue goes on
        assert pool.checkedout() == 0
    finally:
        await engine.dispose()


async def test_a_failed_transaction_is_rolled_back_and_the_queue_goes_on(path: Path) -> None:
    engine = await _migrated(f"sqlite+aiosqlite:///{path}", inline=True)
    try:
        gate = asyncio.Event()
        first = asyncio.create_task(_claim_when(engine, "m-1", gate))
        await _still_waiting(first)
        failing = asyncio.create_task(_claim_then_fail(engine, "m-lost"))
        after = asyncio.create_task(_claim(engine, "m-kept"))
        await _still_waiting(after)
        gate.set()
        await first
        with pytest.raises(RuntimeError):
            await failing
        await after
        assert "m-lost" not in await _keys(engine) and "m-kept" in await _keys(engine)
    finally:
        await engine.dispose()


async def _claim_then_fail(engine: AsyncEngine, key: str) -> None:
    async with transaction(session_factory(engine)) as session:
        await processed.record(session, "test", key, "", MORNING)
        raise RuntimeError("the handler failed")
