"""One engine per process, a short session per unit of work."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

Sessions = async_sessionmaker[AsyncSession]


def create_engine(url: str, **options: Any) -> AsyncEngine:
    """An async engine; SQLite gets WAL, a busy timeout and write-locking transactions."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True, **options)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 15}, **options)
    _make_sqlite_transactions_immediate(engine)
    return engine


def _make_sqlite_transactions_immediate(engine: AsyncEngine) -> None:
    # pysqlite's own transaction handling starts transactions lazily and cannot
    # upgrade a read to a write under concurrency (SQLITE_BUSY without waiting).
    # Taking the write lock at BEGIN serialises writers behind the busy timeout
    # instead, which is what the processed-message dedupe relies on.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine) -> Sessions:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


_writers: WeakKeyDictionary[Engine, asyncio.Lock] = WeakKeyDictionary()


def _writer_lock(sessions: Sessions) -> asyncio.Lock | None:
    """SQLite has one writer at a time: this process queues its own transactions first come,
    first served, instead of letting them poll the busy handler (which starves some)."""
    engine = sessions.kw.get("bind")
    if not isinstance(engine, AsyncEngine) or engine.dialect.name != "sqlite":
        return None
    return _writers.setdefault(engine.sync_engine, asyncio.Lock())


@asynccontextmanager
async def transaction(sessions: Sessions) -> AsyncIterator[AsyncSession]:
    """A session inside one transaction: committed on success, rolled back on error.

    Not to be nested on one SQLite database in one task (the writer queue would wait on
    itself): finish one transaction before opening the next.
    """
    lock = _writer_lock(sessions)
    async with contextlib.AsyncExitStack() as stack:
        if lock is not None:
            await stack.enter_async_context(lock)
        session = await stack.enter_async_context(sessions())
        await stack.enter_async_context(session.begin())
        yield session


async def insert_new(
    session: AsyncSession,
    model: type[SQLModel],
    rows: list[dict[str, Any]],
    unique: list[str],
) -> list[int]:
    """Insert the rows whose `unique` columns are not taken yet; the ids of those inserted.

    The database decides (INSERT … ON CONFLICT DO NOTHING): a duplicate arriving at the same
    moment from another process waits for the first and is then skipped, never doubled.
    """
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table: Any = model
    statement = insert(table).on_conflict_do_nothing(index_elements=unique).returning(table.id)
    result = await session.exec(statement, params=rows)  # type: ignore[call-overload]
    return [int(row_id) for row_id in result.scalars()]
