"""SQLite on the event loop's own thread, for the short transactions of the message path.

A statement of the message path takes microseconds in SQLite; what cost a message most was
around it: aiosqlite's hand-off to its thread and back for every call (230 µs per `SELECT 1`
against 17 µs on the calling thread), then SQLAlchemy's greenlet and session machinery for
every statement of an `AsyncSession` (about 60 µs a statement against 22 µs for the same
Core statement on a plain connection).

So the message path's engine is the standard library's `sqlite3` (SQLAlchemy's pysqlite
dialect) declared async to SQLAlchemy's asyncio extension (`sqlite+inline://`): its calls
never await, so they run on the caller's thread, whether an `AsyncSession` method runs them
in its greenlet or `data.db.run` runs them on the session's sync side with no greenlet at
all. What could hold up the loop is waiting for another process's write lock: SQLite's own
busy handler (which sleeps) is off, and `data.db.transaction` takes the lock with
`begin_waiting`, an `asyncio.sleep` loop between tries. Every transaction takes the
write lock at BEGIN (`BEGIN IMMEDIATE`), so once begun nothing in it waits for a lock. A
plain session of this engine (`async with sessions() as session`, a read in a test, say)
begins in its greenlet: there `do_begin` waits its turn the same way, with `asyncio.sleep`,
rather than answering "database is locked" at once while another process writes.

A commit that finds the write-ahead log past 1,000 pages copies it back into the database
file there and then, fsync included, which would stall the loop now and then (measured: a
check-in's p99 was 5.1 ms with it, 1.0–1.4 ms without). This engine's connections have
those automatic checkpoints off; the server runs them in a thread instead, every second
(`checkpoints_off_the_loop`).

Long reports keep the threaded aiosqlite engine (`data.db.create_engine(url)`); this one is
opted into with `create_engine(url, inline=True)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util.concurrency import await_, in_greenlet

log = logging.getLogger(__name__)

DRIVER = "inline"
CHECKPOINT_INTERVAL_S = 1.0

# Waiting for another process's write lock: first retry after 1 ms, doubling to 50 ms, for
# at most BUSY_TIMEOUT_S seconds in all.
FIRST_RETRY_S = 0.001
LONGEST_RETRY_S = 0.05
BUSY_TIMEOUT_S = 15


class InlineCursor(sqlite3.Cursor):
    """A `sqlite3` cursor with the one coroutine SQLAlchemy's asyncio results call on an
    async driver's cursor (to close it early); a sqlite3 cursor needs no closing for that."""

    async def _async_soft_close(self) -> None:
        return None


class InlineConnection(sqlite3.Connection):
    """A `sqlite3` connection whose cursors are `InlineCursor`s."""

    def cursor(self, factory: Any = InlineCursor) -> Any:  # type: ignore[override]
        return super().cursor(factory)


class SQLiteDialect_inline(SQLiteDialect_pysqlite):  # SQLAlchemy's naming of dialects
    """pysqlite, usable by `AsyncEngine`: nothing here awaits, so no greenlet switch is ever
    needed, and the connections are opened with SQLite's busy handler off."""

    driver = DRIVER
    supports_statement_cache = True
    is_async = True

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        # The asyncio-aware pool; `data.db.create_engine` gives it no overflow limit, so
        # taking a connection never has to wait (no await outside a greenlet).
        return pool.AsyncAdaptedQueuePool

    # SQLAlchemy's AsyncConnection.execute insists that a statement awaited something
    # (it guards against sync drivers): inside its greenlet, a statement awaits a coroutine
    # that is already done, which hands nothing to the event loop.
    def do_execute(self, cursor: Any, statement: Any, parameters: Any, context: Any = None) -> None:
        _await_nothing_in_greenlet()
        super().do_execute(cursor, statement, parameters, context)

    def do_execute_no_params(self, cursor: Any, statement: Any, context: Any = None) -> None:
        _await_nothing_in_greenlet()
        super().do_execute_no_params(cursor, statement, context)

    def do_executemany(
        self, cursor: Any, statement: Any, parameters: Any, context: Any = None
    ) -> None:
        _await_nothing_in_greenlet()
        super().do_executemany(cursor, statement, parameters, context)

    def create_connect_args(self, url: URL) -> Any:
        args, kwargs = super().create_connect_args(url)
        # timeout=0: a locked database answers SQLITE_BUSY at once (`begin_immediately`
        # waits with asyncio.sleep); the pool may close a connection from another thread.
        # isolation_level=None: sqlite3 begins nothing by itself (`do_begin` does).
        kwargs.update(
            timeout=0, check_same_thread=False, isolation_level=None, factory=InlineConnection
        )
        return args, kwargs

    def do_begin(self, dbapi_connection: Any) -> None:
        # Take the write lock at BEGIN: a transaction never has to upgrade a read lock to a
        # write lock (which SQLite cannot wait for), and nothing in it waits for a lock.
        # Here rather than in an engine event: an engine with no event listeners skips
        # their dispatch on every statement.
        if in_greenlet():  # a plain session's first statement: wait for the lock here
            await_(_begin_waiting(dbapi_connection))
        else:  # `begin_waiting` (outside any greenlet) waits between its own tries
            dbapi_connection.execute("BEGIN IMMEDIATE")


registry.register(f"sqlite.{DRIVER}", __name__, "SQLiteDialect_inline")


async def _nothing() -> None:
    return None


def _await_nothing_in_greenlet() -> None:
    if in_greenlet():
        await_(_nothing())


def is_inline(engine: AsyncEngine) -> bool:
    return isinstance(engine.dialect, SQLiteDialect_inline)


def is_busy(error: BaseException) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED: another connection holds the lock; nothing ran."""
    original = error.orig if isinstance(error, OperationalError) else error
    code = getattr(original, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class _Backoff:
    """The pauses between tries to take the write lock: 1 ms doubling to 50 ms, until
    `BUSY_TIMEOUT_S` seconds have passed since the backoff was made (one deadline for a
    `begin_immediately` and the `do_begin` it may run in a greenlet)."""

    def __init__(self) -> None:
        self.deadline = time.monotonic() + BUSY_TIMEOUT_S
        self.delay = FIRST_RETRY_S

    async def pause(self, error: BaseException) -> None:
        """Sleep before the next try; `error` is raised again when it is not a busy
        database, or when the time is up."""
        if not is_busy(error):
            raise error
        now = time.monotonic()
        if now >= self.deadline:
            raise error
        await asyncio.sleep(min(self.delay, self.deadline - now))
        self.delay = min(self.delay * 2, LONGEST_RETRY_S)


async def _begin_waiting(dbapi_connection: Any) -> None:
    backoff = _Backoff()
    while True:
        try:
            dbapi_connection.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as error:
            await backoff.pause(error)


async def begin_waiting(connection: Connection) -> None:
    """Begin a transaction on `connection` now (`BEGIN IMMEDIATE`, the dialect's `do_begin`),
    waiting for another process's write lock with `asyncio.sleep` for up to `BUSY_TIMEOUT_S`
    seconds; then the `OperationalError` ("database is locked") is raised."""
    backoff = _Backoff()
    while True:
        try:
            connection.begin()
            return
        except OperationalError as error:
            await backoff.pause(error)


class Checkpointer:
    """Copies the write-ahead log back into the database file, off the event loop's thread."""

    def __init__(self, database: str) -> None:
        self.database = database
        self._connection: sqlite3.Connection | None = None

    def checkpoint(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint (it copies what no reader still needs and never waits):
        SQLite's answer, (busy, frames in the log, frames copied)."""
        if self._connection is None:
            self._connection = sqlite3.connect(
                self.database, timeout=0, isolation_level=None, check_same_thread=False
            )
        busy, frames, copied = self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(busy), int(frames), int(copied)

    async def run(self, stop: asyncio.Event, interval: float = CHECKPOINT_INTERVAL_S) -> None:
        """Every `interval` seconds in a thread, and once more when `stop` is set."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            try:
                await asyncio.to_thread(self.checkpoint)
            except sqlite3.Error as error:  # a locked or busy file: the next round copies it
                log.warning("WAL checkpoint of %s did not run: %s", self.database, error)
            if stop.is_set():
                return

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@contextlib.asynccontextmanager
async def checkpoints_off_the_loop(engine: AsyncEngine) -> AsyncIterator[None]:
    """While open, the WAL of an inline engine's database is checkpointed in a thread every
    second (and at the end); nothing for any other engine."""
    if not is_inline(engine) or not engine.url.database:
        yield
        return
    checkpointer = Checkpointer(engine.url.database)
    stop = asyncio.Event()
    task = asyncio.create_task(checkpointer.run(stop), name="sqlite checkpoints")
    try:
        yield
    finally:
        stop.set()
        await task
        checkpointer.close()
