"""One engine per process, a short session per unit of work."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Executable, Result, event, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from data import planned, sqlite_inline

Sessions = async_sessionmaker[AsyncSession]


SQLITE_BUSY_TIMEOUT_S = sqlite_inline.BUSY_TIMEOUT_S

# The asyncio driver of each supported database. A URL without one (`sqlite:///qiyi.db`,
# `postgresql://…`, as most guides write them) gets it; SQLAlchemy would load the synchronous
# default driver instead, which its asyncio extension refuses.
ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}
URL_EXAMPLES = "sqlite+aiosqlite:///path/to/qiyi.db or postgresql+asyncpg://user@host/db"


def async_url(url: str) -> str:
    """The database URL with its asyncio driver: `sqlite://…` → `sqlite+aiosqlite://…`,
    `postgresql://…` (or `postgres://…`) → `postgresql+asyncpg://…`; unchanged when it has
    it. ValueError, naming what is accepted, for another database or a synchronous driver
    (the message never repeats the URL: it may hold a password)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"not a database URL; write {URL_EXAMPLES}") from None
    backend, _, driver = parsed.drivername.partition("+")
    backend = "postgresql" if backend == "postgres" else backend
    wanted = ASYNC_DRIVERS.get(backend)
    if wanted is None:
        raise ValueError(f"{backend} is not supported; use {URL_EXAMPLES}")
    if driver == wanted:
        return url
    if driver:
        raise ValueError(f"the driver {driver} is not asynchronous; write {backend}+{wanted}://…")
    return parsed.set(drivername=f"{backend}+{wanted}").render_as_string(hide_password=False)


def create_engine(url: str, *, inline: bool = False, **options: Any) -> AsyncEngine:
    """An async engine; SQLite gets WAL, a busy timeout and write-locking transactions.

    `inline=True` (SQLite only; ignored elsewhere) runs SQLite's calls on the event loop's
    thread (`data.sqlite_inline`): for the short transactions of the message path, not for
    reports, whose long queries would hold up the loop. A URL without its asyncio driver gets
    it (`async_url`).
    """
    url = async_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        server = create_async_engine(url, **options)
        _ping_when_idle(server)
        return server
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    if inline and parsed.database and parsed.database != ":memory:":
        # No overflow limit: taking a connection never waits (see data.sqlite_inline).
        options.setdefault("max_overflow", -1)
        inline_url = parsed.set(drivername=f"sqlite+{sqlite_inline.DRIVER}")
        engine = create_async_engine(inline_url, **options)
    else:
        timeout = {"timeout": SQLITE_BUSY_TIMEOUT_S}
        engine = create_async_engine(url, connect_args=timeout, **options)
    _make_sqlite_transactions_immediate(engine, threaded=not sqlite_inline.is_inline(engine))
    return engine


# A pooled connection idle for longer than this is pinged before it is used again.
IDLE_BEFORE_PING_S = 30.0
_RETURNED_AT = "qiyi.returned_at"


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Pessimistic disconnect handling (SQLAlchemy's documented recipe: a checkout event that
    raises DisconnectionError, and the pool connects anew) for the connections that sat idle,
    when a database restart or a firewall's idle timeout goes unnoticed.

    Not `pool_pre_ping`: on asyncpg it costs three round trips (BEGIN, a ping, ROLLBACK)
    before every transaction — three of the seven a short message made — while a connection
    in steady use is known to be alive. One that dies in use anyway fails its transaction with
    `connection_invalidated`, the pool is renewed, and the conversation tries again once.
    """
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _taken(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get(_RETURNED_AT)
        if returned is None or time.monotonic() - returned < IDLE_BEFORE_PING_S:
            return  # new, or used a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:  # whatever the driver raises for a dead connection
            raise DisconnectionError() from error


def inline_twin(engine: AsyncEngine) -> AsyncEngine:
    """An inline engine on the same SQLite file as `engine`, for the message path; `engine`
    itself for PostgreSQL (asyncpg needs no thread) and in-memory SQLite (a second engine
    would open a second, empty database)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return engine
    return create_engine(engine.url.render_as_string(hide_password=False), inline=True)


def _make_sqlite_transactions_immediate(engine: AsyncEngine, *, threaded: bool) -> None:
    # pysqlite's own transaction handling starts transactions lazily and cannot
    # upgrade a read to a write under concurrency (SQLITE_BUSY without waiting).
    # Taking the write lock at BEGIN serialises writers behind the busy timeout
    # instead, which is what the processed-message dedupe relies on. (The inline dialect
    # begins so itself, and waits for the lock in `transaction`.)
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        if threaded:  # an inline connection waits with asyncio.sleep instead
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        else:  # nor does it checkpoint the WAL on the loop (sqlite_inline.Checkpointer does)
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    if threaded:

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_reader(url: str) -> AsyncEngine:
    """An engine for one piece of read-only work off the message path (the month's standings,
    `bot.reports.standings`), in whatever thread and event loop calls it: no pool (it lives
    for that work), and transactions that lock nothing a writer needs.

    SQLite: a deferred `BEGIN` (one snapshot of the write-ahead log, no write lock: the
    message path's `BEGIN IMMEDIATE` never waits for it) on a connection that refuses
    writes. PostgreSQL: read-only REPEATABLE READ transactions (one snapshot as well).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(
            url,
            poolclass=NullPool,
            isolation_level="REPEATABLE READ",
            execution_options={"postgresql_readonly": True},
        )
    threaded = parsed.set(drivername="sqlite+aiosqlite")  # an inline engine's URL too
    engine = create_async_engine(
        threaded, poolclass=NullPool, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S}
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA query_only=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")

    return engine


def session_factory(engine: AsyncEngine) -> Sessions:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


# The mark `transaction` puts in an inline session's info: the transaction's connection.
INLINE = "qiyi.inline"


def runs_inline(session: AsyncSession) -> bool:
    """Whether the session is a `transaction` of an inline engine (`data.sqlite_inline`): its
    statements then run on this thread without awaiting anything, and are called directly
    instead of in a greenlet."""
    return INLINE in session.sync_session.info


def _is_inline(sessions: Sessions) -> bool:
    engine = sessions.kw.get("bind")
    return isinstance(engine, AsyncEngine) and sqlite_inline.is_inline(engine)


_writers: dict[tuple[asyncio.AbstractEventLoop, str], asyncio.Lock] = {}


def _writer_lock(sessions: Sessions) -> asyncio.Lock | None:
    """SQLite has one writer at a time: this process queues its own transactions first come,
    first served, instead of letting them poll the busy handler (which starves some).

    One queue per database file and event loop, whichever engine (threaded or inline) opens
    the transaction; None for PostgreSQL.
    """
    engine = sessions.kw.get("bind")
    if not isinstance(engine, AsyncEngine) or engine.dialect.name != "sqlite":
        return None
    loop = asyncio.get_running_loop()
    if len(_writers) > 64:  # loops of finished tests and runs
        for key in [key for key in _writers if key[0].is_closed()]:
            del _writers[key]
    return _writers.setdefault((loop, str(engine.url.database)), asyncio.Lock())


async def _begun(engine: AsyncEngine) -> AsyncConnection:
    """A connection of an inline engine in a transaction that holds SQLite's write lock."""
    pool: Any = engine.sync_engine.pool
    if pool.checkedin():  # taking a connection that waits in the pool awaits nothing
        connection = AsyncConnection(engine, engine.sync_engine.connect())
    else:  # opening one may take the pool's asyncio lock: in a greenlet
        connection = await engine.connect()
    try:
        await sqlite_inline.begin_waiting(connection.sync_connection)  # type: ignore[arg-type]
    except BaseException:
        connection.sync_connection.close()  # type: ignore[union-attr]
        raise
    return connection


@asynccontextmanager
async def transaction(sessions: Sessions) -> AsyncIterator[AsyncSession]:
    """A session inside one transaction: committed on success, rolled back on error.

    Not to be nested on one SQLite database in one task (the writer queue would wait on
    itself): finish one transaction before opening the next.
    """
    lock = _writer_lock(sessions)
    if lock is not None:
        await lock.acquire()
    try:
        if _is_inline(sessions):
            async with _inline_transaction(sessions) as session:
                yield session
            return
        session = sessions()
        try:
            async with session.begin():
                yield session
        finally:
            # `async with sessions()` would close in a task of its own, safe from
            # cancellation midway, at the price of a task and a loop turn per transaction
            # (measured in process: 1.7 → 1.3 ms a message on SQLite). The bot's
            # transactions are not cancelled (aiohttp does not cancel handlers, the
            # dispatcher stops between transactions) but at shutdown, when the engine is
            # disposed of anyway.
            await session.close()
    finally:
        if lock is not None:
            lock.release()


@asynccontextmanager
async def _inline_transaction(sessions: Sessions) -> AsyncIterator[AsyncSession]:
    """The write lock is waited for at BEGIN, with asyncio.sleep; then every step runs here
    directly (nothing of this engine awaits). The session is bound to a connection begun
    here, joins its transaction, and the connection commits once the session's changes are
    flushed: none of the session's own transaction and connection bookkeeping (measured: an
    empty transaction 104 → 37 µs)."""
    begun = await _begun(sessions.kw["bind"])
    connection: Any = begun.sync_connection
    session = sessions(bind=begun)
    sync = session.sync_session
    sync.info[INLINE] = connection
    try:
        yield session
        sync.flush()
        connection.commit()
    except BaseException:
        if connection.in_transaction():
            connection.rollback()
        raise
    finally:
        sync.close()
        connection.close()  # back to the pool (which awaits nothing)


def _execute(
    session: Session, statement: Executable, params: Mapping[str, Any] | list[dict[str, Any]] | None
) -> Result[Any]:
    if session.autoflush and (session.new or session.dirty or session.deleted):
        session.flush()  # what a query through the ORM session would do first
    # An inline transaction keeps its connection at hand: asking the session for it again
    # costs more than some statements (its state checks) and returns the same one.
    connection = session.info.get(INLINE) or session.connection()
    return planned.execute(connection, statement, params)


async def run(
    session: AsyncSession,
    statement: Executable,
    params: Mapping[str, Any] | list[dict[str, Any]] | None = None,
) -> Result[Any]:
    """Execute a Core statement in the session's transaction, without the ORM's processing
    (pending ORM changes are flushed first, as a session query would).

    For the message path: its statements are built once at import with `bindparam`s, and a
    statement run here costs a quarter of one built and run through the ORM session
    (measured: 60 µs against 250 µs for a day's study total, through a greenlet); in an
    inline transaction it runs directly, 21 µs. A statement marked `planned` runs on the
    DBAPI cursor with its compiled plan (`data.planned`) and its result is a `Fetched`.
    Rows are fetched eagerly: the result can be read after the call.
    """
    if runs_inline(session):
        return _execute(session.sync_session, statement, params)
    return await session.run_sync(_execute, statement, params)


async def fetch(
    session: AsyncSession, statement: Executable, params: Mapping[str, Any] | None = None
) -> Result[Any]:
    """SQLModel's `session.exec` (rows may hold ORM objects, which join the session),
    without a greenlet where the session runs inline."""
    if runs_inline(session):
        return session.sync_session.exec(statement, params=params)  # type: ignore[call-overload]
    return await session.exec(statement, params=params)  # type: ignore[call-overload]


M = TypeVar("M", bound=SQLModel)


def loaded(session: AsyncSession, model: type[M], values: Sequence[Any]) -> M:
    """The `model` instance of a row read with Core (`values`: its table's columns in order),
    persistent in the session as the ORM would have loaded it: its changes are flushed as an
    UPDATE, and the session's own instance is returned when it has one already.

    For the first query of every message (`data.members.sender_state`): a Core statement and
    this cost a third less than the same row loaded through the ORM's query machinery.
    """
    mapper = inspect(model)
    sync = session.sync_session
    key = mapper.identity_key_from_primary_key(
        [values[index] for index in _primary_key_indexes(model)]
    )
    known = sync.identity_map.get(key)
    if known is not None:
        return known  # type: ignore[no-any-return]
    instance: M = mapper.class_manager.new_instance()
    instance.__dict__.update(zip(_attribute_names(model), values, strict=True))
    make_transient_to_detached(instance)  # as if freshly loaded: no history, a key
    sync.add(instance)
    return instance


@cache
def _attribute_names(model: type[SQLModel]) -> tuple[str, ...]:
    mapper = inspect(model)
    table: Any = model.__table__  # type: ignore[attr-defined]
    return tuple(mapper.get_property_by_column(column).key for column in table.columns)


@cache
def _primary_key_indexes(model: type[SQLModel]) -> tuple[int, ...]:
    table: Any = model.__table__  # type: ignore[attr-defined]
    columns = list(table.columns)
    return tuple(columns.index(column) for column in table.primary_key.columns)


@cache
def _insert_if_new(
    model: type[SQLModel], unique: tuple[str, ...], dialect: str, many: bool
) -> Executable:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table: Any = model.__table__  # type: ignore[attr-defined]
    statement = insert(table).on_conflict_do_nothing(index_elements=unique)
    # Several rows are counted by what they return (an executemany's rowcount is not
    # reliable across drivers); one row by its rowcount, which costs less than RETURNING
    # (35 against 57 µs a row, SQLite inline), and runs with a plan (`data.planned`).
    return statement.returning(table.c.id) if many else planned.planned(statement)


async def insert_new(
    session: AsyncSession,
    model: type[SQLModel],
    rows: list[dict[str, Any]],
    unique: list[str],
) -> int:
    """Insert the rows whose `unique` columns are not taken yet; how many were inserted.

    The database decides (INSERT … ON CONFLICT DO NOTHING): a duplicate arriving at the same
    moment from another process waits for the first and is then skipped, never doubled.
    """
    if not rows:
        return 0
    many = len(rows) > 1
    dialect = session.get_bind().dialect.name
    statement = _insert_if_new(model, tuple(unique), dialect, many)
    result = await run(session, statement, rows if many else rows[0])
    return len(result.all()) if many else int(result.rowcount)  # type: ignore[attr-defined]
