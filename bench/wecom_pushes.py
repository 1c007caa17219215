"""Benchmark of the evening reminder to members reachable only on WeCom (企业微信).

For each database it builds a fresh database with N members (default 10,000), each bound on
WeCom only, enqueues the reminder and times `Dispatcher.run_once` with the real clock against
the fake WeCom API (tests/fakes/wecom_api.py) served on 127.0.0.1 in the same event loop, at
the shipped pacing (QIYI_WECOM_DELIVERY_RATE, 200 messages a second) and concurrency. Then it
checks what the product promises:

- every member was shown the reminder once, in WeCom, and the outbox says so;
- the daily cap held: the app's sends counted for the day (data/wecom_quota.py) never pass
  QIYI_WECOM_DAILY_CAP; with `--cap` below N, the rest went down the ladder (here: to the
  mailbox), none was shown in WeCom beyond the cap.

The goal (issue 14): 10,000 members on WeCom receive the reminder within 2 minutes.

    .venv/bin/python -m bench.wecom_pushes
    .venv/bin/python -m bench.wecom_pushes --members 10000 --cap 8000
    .venv/bin/python -m bench.wecom_pushes --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test

Everything stays on loopback; temporary files and databases are removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from sqlalchemy import insert, select

from bench.databases import postgres_database, sqlite_database
from bench.pushes import import_roster, serve_fake
from bot.channels.wecom_api import WeComApi
from bot.clock import SystemClock
from bot.dispatcher import Dispatcher
from bot.pushes import enqueue_reminders
from bot.settings import Settings, load_settings
from data import migrate, outbox, wecom_quota
from data.db import Sessions, create_engine, session_factory, transaction
from data.models import Binding, Member
from tests.fakes.wecom_api import FakeWeCom

GOAL_MEMBERS = 10_000
GOAL_SECONDS = 120.0
INSERT_CHUNK = 1_000


class BenchmarkError(Exception):
    """The product did something other than what it promises (a wrong count)."""


@dataclass
class Result:
    database: str
    members: int
    cap: int
    seconds: float
    cpu_seconds: float  # this process's CPU time during the dispatch (the fake's included)
    shown: int
    counted: int
    counts: Counter[str]


def bench_settings(
    database_url: str, base: str, fake: FakeWeCom, cap: int, concurrency: int
) -> Settings:
    return load_settings(
        _env_file=None,  # a developer's .env must not change the numbers
        database_url=database_url,
        wecom_corp_id=fake.corp_id,
        wecom_agent_id=fake.agent_id,
        wecom_secret=fake.secret,
        wecom_api_base=base,
        wecom_daily_cap=cap,
        delivery_concurrency=concurrency,
        timezone="Asia/Shanghai",
        scheduler="off",
        quiet_hours="",  # every reminder is due at once
        reminder_time=dt.time(0, 0),  # the reminder's time has come, whenever the run is
    )


async def seed(sessions: Sessions, n: int, now: dt.datetime) -> None:
    """N members, each bound on WeCom only (UserId = 工号)."""
    rows = await import_roster(sessions, n, now)
    async with transaction(sessions) as session:
        ids = dict((await session.exec(select(Member.roster_id, Member.id))).all())  # type: ignore[call-overload]
        bindings = [
            {
                "channel": "wecom",
                "external_id": row.member_id,
                "member_id": ids[row.member_id],
                "reachable": True,
                "bound_at": now,
                "window_budget": 0,
                "window_used": 0,
            }
            for row in rows
        ]
        for start in range(0, n, INSERT_CHUNK):
            await session.exec(insert(Binding), params=bindings[start : start + INSERT_CHUNK])  # type: ignore[call-overload]


async def run_case(database: str, url: str, n: int, cap: int, concurrency: int) -> Result:
    fake = FakeWeCom()
    async with serve_fake(fake.app()) as base:
        settings = bench_settings(url, base, fake, cap, concurrency)
        clock = SystemClock(settings.zone)
        engine = create_engine(url)
        try:
            await migrate.upgrade(engine)
            sessions = session_factory(engine)
            await seed(sessions, n, clock.now())
            async with transaction(sessions) as session:
                queued = (await enqueue_reminders(session, settings, clock)).count
            if queued != n:
                raise BenchmarkError(f"{queued} reminders queued, expected {n}")
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                api = WeComApi(
                    http,
                    sessions,
                    clock,
                    base=base,
                    corp_id=fake.corp_id,
                    agent_id=fake.agent_id,
                    secret=fake.secret,
                )
                dispatcher = Dispatcher(settings, clock, sessions, None, wecom=api)
                started, cpu = time.perf_counter(), time.process_time()
                counts = await dispatcher.run_once()
                seconds = time.perf_counter() - started
                cpu_seconds = time.process_time() - cpu
            async with sessions() as session:
                states = await outbox.counts(session)
                local = clock.now()
                counted = await wecom_quota.sent_today(
                    session, local.replace(hour=0, minute=0, second=0, microsecond=0)
                )
        finally:
            await engine.dispose()
    shown = len(fake.shown)
    users = len({s.user for s in fake.shown})
    on_wecom = min(n, cap)
    expected = {"sent": on_wecom} | ({"mailbox": n - on_wecom} if n > on_wecom else {})
    if dict(counts) != expected or states != expected or shown != on_wecom or users != shown:
        raise BenchmarkError(
            f"N={n} cap={cap}: dispatcher counted {dict(counts)}, outbox {states}, "
            f"{shown} shown to {users} members"
        )
    if counted > cap:
        raise BenchmarkError(f"{counted} sends counted for the day, over the cap of {cap}")
    return Result(database, n, cap, seconds, cpu_seconds, shown, counted, counts)


@dataclass
class Options:
    members: int
    cap: int
    concurrency: int
    postgres: str | None


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.wecom_pushes",
        description="Time the evening reminder to N members on WeCom only.",
    )
    parser.add_argument("--members", type=int, default=GOAL_MEMBERS, metavar="N")
    parser.add_argument(
        "--cap", type=int, default=40_000, help="QIYI_WECOM_DAILY_CAP (default: 40000)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=8, help="QIYI_DELIVERY_CONCURRENCY (default: 8)"
    )
    parser.add_argument("--postgres", metavar="URL", help="also measure on PostgreSQL")
    args = parser.parse_args(argv)
    if args.members < 1 or args.cap < 1:
        parser.error("--members and --cap must be positive")
    return Options(args.members, args.cap, args.concurrency, args.postgres)


async def main_async(options: Options) -> list[Result]:
    backends: list[tuple[str, str | None]] = [("sqlite", None)]
    if options.postgres:
        backends.append(("postgresql", options.postgres))
    results = []
    with tempfile.TemporaryDirectory(prefix="qiyi-bench-") as folder:
        for database, admin_url in backends:
            scratch = postgres_database(admin_url) if admin_url else sqlite_database(Path(folder))
            async with scratch as url:
                results.append(
                    await run_case(database, url, options.members, options.cap, options.concurrency)
                )
    return results


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_options(argv)
    load_before = os.getloadavg()[0]
    results = asyncio.run(main_async(options))
    print(
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs; fake WeCom on 127.0.0.1 in the same event loop"
    )
    print(f"delivery_concurrency {options.concurrency}, wecom_delivery_rate 200/s")
    print(f"load average (1 min) before the run {load_before:.1f}, after {os.getloadavg()[0]:.1f}")
    print(
        "| database | N | daily cap | dispatch s | CPU s | sends/s | shown in WeCom | counted "
        "| goal |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        goal = "met" if r.seconds < GOAL_SECONDS else "MISSED"
        print(
            f"| {r.database} | {r.members:,} | {r.cap:,} | {r.seconds:.1f} | {r.cpu_seconds:.1f} | "
            f"{r.shown / r.seconds:,.0f} | {r.shown:,} | {r.counted:,} | "
            f"{goal} (< {GOAL_SECONDS:.0f} s) |"
        )


if __name__ == "__main__":
    main()
