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
`begin_immediately`, an `asyncio.sleep` loop between tries. Every transaction takes the
write lock at BEGIN (`BEGIN IMMEDIATE`), so once begun nothing in it waits for a lock. So
sessions of this engine are opened with `data.db.transaction`: a plain session would answer
"database is locked" at once while another process writes, instead of waiting its turn.

Long reports keep the threaded aiosqlite engine (`data.db.create_engine(url)`); this one is
opted into with `create_engine(url, inline=True)`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

from sqlalchemy import pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.util.concurrency import await_, in_greenlet

DRIVER = "inline"

# Waiting for another process's write lock: first retry after 1 ms, doubling to 50 ms.
FIRST_RETRY_S = 0.001
LONGEST_RETRY_S = 0.05


class InlineCursor(sqlite3.Cursor):
    """A `sqlite3` cursor with the one coroutine SQLAlchemy's asyncio results call on an
    async driver's cursor (to close it early); a sqlite3 cursor needs no closing for that."""

    async def _async_soft_close(self) -> None:
        return None


class InlineConnection(sqlite3.Connection):
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


async def begin_immediately(session: AsyncSession, busy_timeout: float) -> None:
    """Begin the session's transaction now (`BEGIN IMMEDIATE`, the dialect's `do_begin`),
    waiting for another process's write lock with `asyncio.sleep` for up to `busy_timeout`
    seconds; then the `OperationalError` ("database is locked") is raised."""
    pool: Any = session.sync_session.get_bind().pool
    deadline: float | None = None
    delay = FIRST_RETRY_S
    while True:
        try:
            if pool.checkedin():  # taking a connection that waits in the pool awaits nothing
                session.sync_session.connection()
            else:  # opening one may take the pool's asyncio lock: in a greenlet
                await session.connection()
            return
        except OperationalError as error:
            await session.rollback()  # the connection goes back to the pool
            if not is_busy(error):
                raise
            now = time.monotonic()
            deadline = deadline if deadline is not None else now + busy_timeout
            if now >= deadline:
                raise
            await asyncio.sleep(min(delay, deadline - now))
            delay = min(delay * 2, LONGEST_RETRY_S)
