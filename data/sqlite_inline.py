"""SQLite on the event loop's own thread, for the short transactions of the message path.

aiosqlite runs every call (cursor, execute, fetch, close) on a thread of its own and wakes the
loop for each result: measured here, 230 µs per `SELECT 1` against 17 µs on the calling
thread, which made the hand-off most of a message's cost. A statement of the message path
takes microseconds, so this connection runs it where it is called. What could block the loop
is waiting for another process's write lock: that wait is an `asyncio.sleep` loop here
instead of SQLite's sleeping busy handler, so the loop keeps serving while it waits.

Long reports keep the threaded engine (`data.db.create_engine(url)`); this one is opted into
with `create_engine(url, inline=True)`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import aiosqlite

# Waiting for another process's write lock: first retry after 1 ms, doubling to 50 ms.
FIRST_RETRY_S = 0.001
LONGEST_RETRY_S = 0.05


def _is_busy(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class _RunNow:
    """Stands in for aiosqlite's queue to its thread: a queued call runs at once.
    (SQLAlchemy's adapter queues its isolation-level change directly.)"""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as error:  # handed to the awaiting side, as aiosqlite does
            if future is not None and not future.done():
                future.set_exception(error)
        else:
            if future is not None and not future.done():
                future.set_result(result)


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection without its thread: each call runs on the caller's thread."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], busy_timeout: float) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _RunNow()  # type: ignore[assignment]
        self.busy_timeout = busy_timeout

    def __await__(self) -> Any:
        return self._connect().__await__()  # no thread to start

    async def _connect(self) -> InlineConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        deadline: float | None = None
        delay = FIRST_RETRY_S
        while True:
            try:
                return fn(*args, **kwargs)
            except sqlite3.OperationalError as error:
                # SQLITE_BUSY means the statement did not run: another process holds the
                # write lock (every transaction here begins IMMEDIATE, so a transaction
                # never has to upgrade a read lock, the one case a retry cannot fix).
                if not _is_busy(error):
                    raise
                now = time.monotonic()
                deadline = deadline if deadline is not None else now + self.busy_timeout
                if now >= deadline:
                    raise
                await asyncio.sleep(min(delay, deadline - now))
                delay = min(delay * 2, LONGEST_RETRY_S)

    def stop(self) -> None:  # type: ignore[override]
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def connector(database: str, busy_timeout: float) -> Callable[[], Any]:
    """An `async_creator` for `create_async_engine`: opens an `InlineConnection` on `database`.

    SQLite's own busy handler is turned off (timeout 0): it would sleep on the loop's thread.
    """

    async def connect() -> InlineConnection:
        def open_database() -> sqlite3.Connection:
            # The pool hands a connection to one task at a time; it may be closed from
            # another thread at shutdown.
            return sqlite3.connect(
                database, timeout=0, isolation_level=None, check_same_thread=False
            )

        return await InlineConnection(open_database, busy_timeout)

    return connect
