"""Benchmark of the push pipeline: enqueueing the evening reminder and dispatching it.

For each database and each roster size N it builds a fresh database with N members, each
bound on WeChat with an open 48-hour window, then measures

1. `bot.pushes.enqueue_reminders` in one transaction (rows/s),
2. `Dispatcher.run_once` against the fake WeChat API (tests/fakes/wechat_api.py) served on
   127.0.0.1 in the same process and event loop (sends/s),
3. the peak memory traced by tracemalloc during each of the two steps.

Timings come from a first pass without tracemalloc (tracing slows allocation-heavy code
several-fold); the outbox is then emptied and the same two steps run again under
tracemalloc for the memory columns.

The product's goals: 10,000 reminders enqueued in under 2 s on SQLite; the dispatcher never
the bottleneck (at least 1,000 sends/s against the loopback fake at concurrency 50); memory
flat as members grow.

    .venv/bin/python -m bench.pushes
    .venv/bin/python -m bench.pushes --members 10000 --markdown
    .venv/bin/python -m bench.pushes --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test

Everything stays on loopback; temporary files and databases are removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import os
import platform
import shlex
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import sqlalchemy
from aiohttp import web
from rich.console import Console
from rich.table import Table
from sqlalchemy import delete, insert, make_url, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bench import tables
from bench.databases import postgres_database, postgres_version, sqlite_database
from bot.channels.wechat_api import WeChatApi
from bot.clock import FixedClock
from bot.dispatcher import Dispatcher
from bot.pushes import enqueue_reminders
from bot.settings import Settings, load_settings
from data import members, migrate, outbox
from data.db import Sessions, create_engine, session_factory, transaction
from data.members import RosterRow
from data.models import Binding, DeliveryAttempt, MailboxItem, Member, OutboxItem, Role
from tests.fakes.wechat_api import FakeWeChat

SHANGHAI = ZoneInfo("Asia/Shanghai")
# A Wednesday, one minute after the default reminder time (20:30).
EVENING = dt.datetime(2026, 11, 25, 20, 31, tzinfo=SHANGHAI)
DEFAULT_MEMBERS = (2_500, 5_000, 10_000)
WARMUP_MEMBERS = 200
BRANCHES = [f"第{i + 1}党支部" for i in range(37)]
CHANNEL = "wechat"
APPID = "wx-bench"
SECRET = "bench-secret"
INSERT_CHUNK = 1_000
MIB = 1024 * 1024

# The goals the table is judged against.
ENQUEUE_GOAL_MEMBERS = 10_000
ENQUEUE_GOAL_SECONDS = 2.0
SENDS_GOAL = 1_000.0
FLAT_MEMORY_FACTOR = 1.5  # "flat": the peak grows by less than this while N grows 4-fold


class BenchmarkError(Exception):
    """The product did something other than what the benchmark expects (a wrong count)."""


class _Tally:
    """Stands in for the fake's request logs (`received`, `custom_sent`): counts what would
    be appended and keeps nothing, so the fake's own bookkeeping, which lives in this
    process too, does not show up as the product's memory growing with N."""

    def __init__(self) -> None:
        self.count = 0

    def append(self, _item: object) -> None:
        self.count += 1

    def __len__(self) -> int:
        return self.count


@dataclass
class Result:
    database: str
    members: int
    enqueue_seconds: float
    dispatch_seconds: float
    enqueue_peak_mib: float
    dispatch_peak_mib: float
    # Two dispatchers on two engines sharing the outbox (PostgreSQL only: SKIP LOCKED).
    pair_seconds: float | None = None
    pair_shares: tuple[int, int] | None = None

    @property
    def enqueue_rate(self) -> float:
        return self.members / self.enqueue_seconds

    @property
    def send_rate(self) -> float:
        return self.members / self.dispatch_seconds


# ---- databases --------------------------------------------------------------------------


# ---- the fake platform ------------------------------------------------------------------


@contextlib.asynccontextmanager
async def serve_fake(app: web.Application) -> AsyncIterator[str]:
    """Serve a fake platform's app on 127.0.0.1 at a free port, in this event loop; yields
    its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


def fresh_tallies(fake: FakeWeChat) -> _Tally:
    """Start counting the fake's requests anew; returns the tally of successful custom sends."""
    sent = _Tally()
    fake.received = _Tally()  # type: ignore[assignment]
    fake.custom_sent = sent  # type: ignore[assignment]
    return sent


# ---- one case ---------------------------------------------------------------------------


def bench_settings(database_url: str, api_base: str, concurrency: int) -> Settings:
    return load_settings(
        _env_file=None,  # a developer's .env must not change the numbers
        database_url=database_url,
        wechat_appid=APPID,
        wechat_secret=SECRET,
        wechat_api_base=api_base,
        timezone="Asia/Shanghai",
        scheduler="off",
        reminder_time=dt.time(20, 30),
        daily_goal_minutes=120,
        quiet_hours="",  # nothing defers: every reminder is due at once
        delivery_rate=1e6,  # the limiter never waits; the concurrency bound is what counts
        delivery_concurrency=concurrency,
    )


async def import_roster(sessions: Sessions, n: int, now: dt.datetime) -> list[RosterRow]:
    """N members in 37 branches (工号 100001 on), imported as the roster import does; their
    rows."""
    rows = [
        RosterRow(str(100_000 + i), f"成员{i}", BRANCHES[i % len(BRANCHES)], Role.MEMBER)
        for i in range(1, n + 1)
    ]
    async with transaction(sessions) as session:
        await members.upsert_roster(session, rows, now)
    return rows


async def seed(engine: AsyncEngine, sessions: Sessions, n: int, now: dt.datetime) -> None:
    """N members in 37 branches, each bound on WeChat with an open window (not timed)."""
    rows = await import_roster(sessions, n, now)
    window_until = now + dt.timedelta(hours=48)
    async with engine.begin() as connection:
        result = await connection.execute(select(Member.roster_id, Member.id))
        ids = {roster_id: member_id for roster_id, member_id in result}
        bindings = [
            {
                "channel": CHANNEL,
                "external_id": f"openid-{i}",
                "member_id": ids[row.member_id],
                "reachable": True,
                "bound_at": now,
                "window_until": window_until,
                "window_budget": 5,
                "window_used": 0,
            }
            for i, row in enumerate(rows, start=1)
        ]
        for start in range(0, len(bindings), INSERT_CHUNK):
            await connection.execute(insert(Binding), bindings[start : start + INSERT_CHUNK])
        if connection.dialect.name == "postgresql":
            # In production the roster and bindings are old and autovacuum has analysed
            # them; without statistics the planner scans every binding per claimed batch.
            # The outbox is left unanalysed, as it is right after the evening burst.
            await connection.execute(text("ANALYZE member, binding, branch"))


async def reset_outbox(engine: AsyncEngine) -> None:
    """Back to the state right after seeding: no pushes, no attempts, windows unused."""
    async with engine.begin() as connection:
        await connection.execute(delete(DeliveryAttempt))
        await connection.execute(delete(MailboxItem))
        await connection.execute(delete(OutboxItem))
        await connection.execute(update(Binding).values(window_used=0))


async def enqueue(sessions: Sessions, settings: Settings, clock: FixedClock, n: int) -> None:
    async with transaction(sessions) as session:
        done = await enqueue_reminders(session, settings, clock)
    if done.count != n:
        raise BenchmarkError(f"enqueue_reminders queued {done.count} reminders, expected {n}")


async def check_dispatch(sessions: Sessions, counts: Counter[str], sent: _Tally, n: int) -> None:
    """Every reminder went out once as a customer-service message, and the outbox says so."""
    async with sessions() as session:
        states = await outbox.counts(session)
    if dict(counts) != {"sent": n} or sent.count != n or states != {"sent": n}:
        raise BenchmarkError(
            f"dispatch of {n}: dispatcher counted {dict(counts)}, the fake accepted "
            f"{sent.count} custom sends, the outbox holds {states}"
        )


@contextlib.asynccontextmanager
async def dispatcher_for(
    settings: Settings, clock: FixedClock, sessions: Sessions
) -> AsyncIterator[Dispatcher]:
    """The dispatcher as the server builds it: one HTTP session, the database token cache."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        api = WeChatApi(
            http,
            sessions,
            clock,
            base=settings.wechat_api_base,
            appid=APPID,
            secret=SECRET,
        )
        yield Dispatcher(settings, clock, sessions, api)


def _collect_and_mark() -> int:
    """Collect garbage, then start a fresh peak; returns the traced bytes now."""
    gc.collect()
    tracemalloc.reset_peak()
    return tracemalloc.get_traced_memory()[0]


def _peak_since(base: int) -> float:
    return (tracemalloc.get_traced_memory()[1] - base) / MIB


async def run_case(
    database: str, database_url: str, n: int, fake: FakeWeChat, api_base: str, concurrency: int
) -> Result:
    settings = bench_settings(database_url, api_base, concurrency)
    clock = FixedClock(EVENING)
    engine = create_engine(database_url)
    try:
        await migrate.upgrade(engine)
        sessions = session_factory(engine)
        await seed(engine, sessions, n, clock.now())

        # Pass 1: timings, without tracemalloc.
        gc.collect()
        started = time.perf_counter()
        await enqueue(sessions, settings, clock, n)
        enqueue_seconds = time.perf_counter() - started

        sent = fresh_tallies(fake)
        async with dispatcher_for(settings, clock, sessions) as dispatcher:
            gc.collect()
            started = time.perf_counter()
            counts = await dispatcher.run_once()
            dispatch_seconds = time.perf_counter() - started
        await check_dispatch(sessions, counts, sent, n)

        # Pass 2: the same two steps on the same members, under tracemalloc.
        await reset_outbox(engine)
        sent = fresh_tallies(fake)
        tracemalloc.start()
        try:
            base = _collect_and_mark()
            await enqueue(sessions, settings, clock, n)
            enqueue_peak = _peak_since(base)
            async with dispatcher_for(settings, clock, sessions) as dispatcher:
                base = _collect_and_mark()
                counts = await dispatcher.run_once()
                dispatch_peak = _peak_since(base)
        finally:
            tracemalloc.stop()
        await check_dispatch(sessions, counts, sent, n)
        pair = (
            await run_pair(engine, database_url, settings, clock, fake, n)
            if database == "postgresql"
            else None
        )
    finally:
        await engine.dispose()
    result = Result(database, n, enqueue_seconds, dispatch_seconds, enqueue_peak, dispatch_peak)
    if pair is not None:
        result.pair_seconds, result.pair_shares = pair
    return result


async def run_pair(
    engine: AsyncEngine,
    database_url: str,
    settings: Settings,
    clock: FixedClock,
    fake: FakeWeChat,
    n: int,
) -> tuple[float, tuple[int, int]]:
    """Pass 3: the same reminder drained by two dispatchers with engines of their own, as two
    server processes would (here in one event loop, so they share one core's worth of Python)."""
    await reset_outbox(engine)
    sessions = session_factory(engine)
    await enqueue(sessions, settings, clock, n)
    other = create_engine(database_url)
    try:
        sent = fresh_tallies(fake)
        async with (
            dispatcher_for(settings, clock, sessions) as first,
            dispatcher_for(settings, clock, session_factory(other)) as second,
        ):
            gc.collect()
            started = time.perf_counter()
            one, two = await asyncio.gather(first.run_once(), second.run_once())
            seconds = time.perf_counter() - started
        await check_dispatch(sessions, one + two, sent, n)
    finally:
        await other.dispose()
    return seconds, (one["sent"], two["sent"])


# ---- the run ----------------------------------------------------------------------------


@dataclass
class Options:
    members: list[int]
    concurrency: int
    postgres: str | None
    markdown: bool
    timeout: float


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pushes",
        description="Benchmark enqueueing and dispatching the evening reminder.",
    )
    parser.add_argument(
        "--members",
        type=int,
        nargs="+",
        default=list(DEFAULT_MEMBERS),
        metavar="N",
        help="roster sizes to measure (default: 2500 5000 10000)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=50, help="QIYI_DELIVERY_CONCURRENCY (default: 50)"
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="also measure on PostgreSQL; a throwaway database is created on this server, "
        "e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument("--markdown", action="store_true", help="print a plain Markdown table")
    parser.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="seconds one case may take before the run gives up (default: 900)",
    )
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.members):
        parser.error("--members: sizes must be positive")
    if not 1 <= args.concurrency <= 500:
        parser.error("--concurrency: between 1 and 500 (the setting's bounds)")
    return Options(args.members, args.concurrency, args.postgres, args.markdown, args.timeout)


def command_line(options: Options) -> str:
    """The command as typed, with a PostgreSQL password hidden."""
    words = list(sys.orig_argv)
    if options.postgres:
        hidden = make_url(options.postgres).render_as_string(hide_password=True)
        words = [word.replace(options.postgres, hidden) for word in words]
    return shlex.join(words)


async def run(options: Options, progress: Console) -> list[Result]:
    backends: list[tuple[str, str | None]] = [("sqlite", None)]
    if options.postgres:
        backends.append(("postgresql", options.postgres))
    results: list[Result] = []
    fake = FakeWeChat(appid=APPID, secret=SECRET)
    with tempfile.TemporaryDirectory(prefix="qiyi-bench-") as folder:
        async with serve_fake(fake.app()) as api_base:
            for database, admin_url in backends:
                # A small unreported round first: imports, template and statement caches.
                sizes = [(WARMUP_MEMBERS, False)] + [(n, True) for n in options.members]
                for n, report in sizes:
                    label = f"{database} N={n}" + ("" if report else " (warm-up)")
                    progress.log(f"{label}: setting up and measuring")
                    scratch = (
                        postgres_database(admin_url) if admin_url else sqlite_database(Path(folder))
                    )
                    async with scratch as url, asyncio.timeout(options.timeout):
                        result = await run_case(
                            database, url, n, fake, api_base, options.concurrency
                        )
                    if report:
                        results.append(result)
                        progress.log(
                            f"{label}: enqueue {result.enqueue_seconds:.2f} s, "
                            f"dispatch {result.dispatch_seconds:.2f} s"
                        )
    return results


# ---- the report -------------------------------------------------------------------------

COLUMNS = (
    "database",
    "N",
    "enqueue s",
    "enqueue rows/s",
    "dispatch s",
    "sends/s",
    "peak MiB enqueue",
    "peak MiB dispatch",
    "2 dispatchers s",
    "split",
)


def rows(results: list[Result]) -> list[list[str]]:
    return [
        [
            r.database,
            f"{r.members:,}",
            f"{r.enqueue_seconds:.3f}",
            f"{r.enqueue_rate:,.0f}",
            f"{r.dispatch_seconds:.3f}",
            f"{r.send_rate:,.0f}",
            f"{r.enqueue_peak_mib:.2f}",
            f"{r.dispatch_peak_mib:.2f}",
            f"{r.pair_seconds:.3f}" if r.pair_seconds is not None else "-",
            "/".join(f"{x:,}" for x in r.pair_shares) if r.pair_shares else "-",
        ]
        for r in results
    ]


def verdicts(results: list[Result]) -> list[str]:
    """The goals, judged on what was measured."""
    lines: list[str] = []
    for database in dict.fromkeys(r.database for r in results):
        mine = sorted((r for r in results if r.database == database), key=lambda r: r.members)
        goal = [r for r in mine if r.members == ENQUEUE_GOAL_MEMBERS]
        if database == "sqlite" and goal:
            seconds = goal[0].enqueue_seconds
            ok = seconds < ENQUEUE_GOAL_SECONDS
            lines.append(
                f"{database}: enqueue of {ENQUEUE_GOAL_MEMBERS:,} in {seconds:.2f} s "
                f"(goal < {ENQUEUE_GOAL_SECONDS:g} s): {'met' if ok else 'MISSED'}"
            )
        slowest = min(mine, key=lambda r: r.send_rate)
        ok = slowest.send_rate >= SENDS_GOAL
        lines.append(
            f"{database}: slowest dispatch {slowest.send_rate:,.0f} sends/s at "
            f"N={slowest.members:,} (goal ≥ {SENDS_GOAL:,.0f}): {'met' if ok else 'MISSED'}"
        )
        if len(mine) > 1:
            small, large = mine[0], mine[-1]
            for step, before, after in (
                ("enqueue", small.enqueue_peak_mib, large.enqueue_peak_mib),
                ("dispatch", small.dispatch_peak_mib, large.dispatch_peak_mib),
            ):
                factor = after / before if before > 0 else float("inf")
                ok = factor < FLAT_MEMORY_FACTOR
                lines.append(
                    f"{database}: {step} peak {before:.2f} → {after:.2f} MiB while N goes "
                    f"{small.members:,} → {large.members:,} (×{factor:.2f}; flat if "
                    f"< ×{FLAT_MEMORY_FACTOR:g}): {'flat' if ok else 'GROWS'}"
                )
    return lines


def environment_lines(options: Options, pg_version: str | None) -> list[str]:
    lines = [
        f"Python {platform.python_version()} ({platform.python_implementation()}) on "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        f"SQLite {sqlite3.sqlite_version}, SQLAlchemy {sqlalchemy.__version__}, "
        f"aiohttp {aiohttp.__version__}",
    ]
    if pg_version:
        lines.append(f"PostgreSQL server {pg_version}")
    lines.append(
        f"delivery_concurrency {options.concurrency}, delivery_rate 1e6/s, quiet_hours off, "
        f"fake WeChat on 127.0.0.1 in the same event loop"
    )
    lines.append(f"command: {command_line(options)}")
    return lines


def print_markdown(results: list[Result], header: list[str], footer: list[str]) -> None:
    tables.print_markdown(COLUMNS, rows(results), header, footer)


def print_rich(
    console: Console, results: list[Result], header: list[str], footer: list[str]
) -> None:
    for line in header:
        console.print(line, highlight=False, soft_wrap=True)
    table = Table(title="Push pipeline: enqueue_reminders → Dispatcher.run_once")
    for i, column in enumerate(COLUMNS):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows(results):
        table.add_row(*row)
    console.print(table)
    for line in footer:
        console.print(line, highlight=False, soft_wrap=True)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    progress = Console(stderr=True, log_path=False)
    try:
        pg_version = asyncio.run(postgres_version(options.postgres)) if options.postgres else None
        results = asyncio.run(run(options, progress))
    except BenchmarkError as problem:
        progress.print(f"[bold red]wrong result:[/] {problem}")
        return 1
    header = environment_lines(options, pg_version)
    footer = verdicts(results)
    if options.markdown:
        print_markdown(results, header, footer)
    else:
        print_rich(tables.terminal(width=132), results, header, footer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
