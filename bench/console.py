"""Benchmark of the web console (管理后台): each page's server time for an admin and a
secretary, and whether a page's memory and size grow with the roster.

The data is `bench/reports.py`'s year 2026 (10,000 members in 40 branches by default: study
entries, the points ledger, volunteer hours — 15 % still pending, for 审核 — notes, lessons,
quiz answers, materials) with what the console adds (`bench/console_data.py`: an admin,
bindings, a year's audit log, the staff's past console sessions, 90 days of outbox). The
server is the real app (`bot.app.create_app`) on a loopback port in this process, its clock
standing at 31 December 2026, 17:00 in Shanghai; the admin and the secretary of branch 1 are
signed in with console sessions made through `data/console.py`.

1. Time: every page of `PAGES`, per role, `--runs` times (after 2 warm-up requests), from
   sending the request to the body read; p50 and p95. The overview's month standings are
   computed in a helper process and kept 5 minutes (`bot/reports/standings.py`): the very
   first request (cold: it starts that computation and waits up to 3 s) is shown apart, and
   the warm runs start once the standings are there.
2. Memory: the same pages once more, each request under `tracemalloc` (the peak of Python's
   allocations while it is served, over what was allocated before), at `--small` members
   (2,500) and at `--members`, with the HTML's size at both: paged lists stay flat.

    .venv/bin/python -m bench.console
    .venv/bin/python -m bench.console --backend both --markdown
    .venv/bin/python -m bench.console --members 2000 --small 500 --backend sqlite

PostgreSQL: a throwaway database (`qiyi_bench_…`) is created on the server of `--postgres`
(the postgres superuser on 127.0.0.1:5432 by default) and dropped at the end; SQLite: a
temporary file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import os
import platform
import secrets
import shlex
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self
from zoneinfo import ZoneInfo

import aiohttp
import sqlalchemy
from aiohttp import web
from rich.console import Console

from bench import console_data, tables
from bench.databases import postgres_database, postgres_version, sqlite_database
from bench.reports import (
    Dataset,
    Setup,
    Statement,
    explain,
    load,
    statement_label,
    statement_timing,
)
from bench.webhook import hidden, percentile
from bot import signin
from bot.app import create_app
from bot.appkeys import CONVERSATION, ENGINE, SESSIONS
from bot.clock import FixedClock
from bot.settings import Settings
from console import security
from data import console, directory, migrate
from data.db import create_engine, transaction

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 12, 31, 17, 0, tzinfo=SHANGHAI)
MEMBERS, SMALL, BRANCHES = 10_000, 2_500, 40
RUNS, WARM_UP = 60, 2
P95_GOAL_MS = 150.0
GROWTH_BOUND = 1.5  # a page whose memory grows more than this from SMALL to MEMBERS grows
STANDINGS_WAIT_S = 600.0
POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
SLOWEST_PLANS = 2  # statements explained per page that missed the goal
STANDINGS_MARKER = "截至 "  # the overview's standings heading carries their time


@dataclass(frozen=True)
class Page:
    label: str
    path: str  # formatted with the viewer's `branch`, `member` and `far_page`


# One line per page; pages added later (导入名册, 导出名册, the overview's chart) go here.
PAGES = (
    Page("概览", "/admin/"),
    Page("成员", "/admin/members"),
    Page("成员: search 成员12", "/admin/members?q=成员12"),
    Page("成员: branch filter", "/admin/members?branch={branch}"),
    Page("成员: far page", "/admin/members?page={far_page}"),
    Page("成员: a member's record", "/admin/members/{member}"),
    Page("审核", "/admin/approvals"),
    Page("审计", "/admin/audit"),
    Page("审计: action and door", "/admin/audit?action=volunteer.approve&door=console"),
    Page("我的登录", "/admin/sessions"),
)


class BenchmarkError(Exception):
    """A page answered with something other than 200."""


@dataclass(frozen=True)
class Viewer:
    role: str  # admin | secretary
    cookie: str
    branch: int  # the branch filter's value: one in the viewer's scope
    member: int  # a member in the viewer's scope
    far_page: int

    def path(self, page: Page) -> str:
        return page.path.format(branch=self.branch, member=self.member, far_page=self.far_page)


@dataclass
class Timing:
    backend: str
    page: str
    role: str
    seconds: list[float] = field(default_factory=list)

    def ms(self, share: float) -> float:
        return percentile(sorted(self.seconds), share) * 1000


@dataclass
class Footprint:
    """One request's peak allocation and its HTML's size, at the small and the full roster."""

    backend: str
    page: str
    role: str
    peak: dict[int, int] = field(default_factory=dict)  # members → bytes
    html: dict[int, int] = field(default_factory=dict)
    rows: dict[int, int] = field(default_factory=dict)  # table rows shown, headers aside


@dataclass
class Cold:
    backend: str
    seconds: float
    with_standings: bool
    standings_seconds: float  # until the standings were there


@dataclass
class Slow:
    """A page that missed the goal: its statements, slowest first, and their plans."""

    backend: str
    page: str
    role: str
    statements: list[Statement]
    plans: list[list[str]]


@dataclass
class Results:
    timings: list[Timing] = field(default_factory=list)
    slow: list[Slow] = field(default_factory=list)
    footprints: dict[tuple[str, str, str], Footprint] = field(default_factory=dict)
    colds: list[Cold] = field(default_factory=list)
    setups: list[str] = field(default_factory=list)


# ---- serving and signing in --------------------------------------------------------------


@dataclass
class Server:
    app: web.Application
    base: str


@contextlib.asynccontextmanager
async def serving(url: str, **overrides: object) -> AsyncIterator[Server]:
    """The real app on a loopback port of this process (migrated already: not at start);
    `overrides` are further settings (the media store's folder)."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=url, wechat_token="bench", scheduler="off", **overrides
    )
    app = create_app(settings, FixedClock(NOW), run_migrations=False, background=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield Server(app, f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()


async def sign_in(server: Server, role: str, member_id: int, scope: int | None) -> Viewer:
    """A console session made as the sign-in makes it, and what this viewer looks at."""
    token = secrets.token_urlsafe(32)
    async with transaction(server.app[SESSIONS]) as session:
        await console.create_session(
            session,
            token=token,
            csrf=secrets.token_urlsafe(32),
            member_id=member_id,
            at=NOW,
            lifetime=signin.SESSION_LIFETIME,
            ip="127.0.0.1",
            user_agent=console_data.BROWSER,
        )
        shown, total = await directory.search(session, directory.Query(), scope)
    branch = scope if scope is not None else 7
    member = [row.id for row in shown if row.role == "member"][-1]
    far_page = max(1, total // directory.PAGE_SIZE)  # the last full page
    return Viewer(role, f"{security.SESSION_COOKIE}={token}", branch, member, far_page)


async def get(http: aiohttp.ClientSession, server: Server, viewer: Viewer, path: str) -> bytes:
    """The body of `path` as the viewer's browser gets it; anything but 200 is an error."""
    headers = {"Cookie": viewer.cookie, "User-Agent": console_data.BROWSER}
    async with http.get(server.base + path, headers=headers, allow_redirects=False) as response:
        body = await response.read()
    if response.status != 200:
        raise BenchmarkError(f"{viewer.role} {path}: {response.status}")
    return body


async def timed(
    http: aiohttp.ClientSession, server: Server, viewer: Viewer, path: str
) -> tuple[float, bytes]:
    """The seconds from sending the request to the body read, and the body."""
    started = time.perf_counter()
    body = await get(http, server, viewer, path)
    return time.perf_counter() - started, body


async def fetch(http: aiohttp.ClientSession, server: Server, viewer: Viewer, page: Page) -> bytes:
    return await get(http, server, viewer, viewer.path(page))


# ---- measuring ---------------------------------------------------------------------------


async def cold_overview(
    backend: str, http: aiohttp.ClientSession, server: Server, viewer: Viewer
) -> Cold:
    """The first overview (it starts the standings' computation), then until they are in."""
    started = time.perf_counter()
    seconds, body = await timed(http, server, viewer, viewer.path(PAGES[0]))
    standings = server.app[CONVERSATION].standings
    deadline = started + STANDINGS_WAIT_S
    while await standings.month_so_far() is None:
        if time.perf_counter() > deadline:
            raise BenchmarkError("the month's standings never came")
    ready = time.perf_counter() - started
    return Cold(backend, seconds, STANDINGS_MARKER in body.decode(), ready)


async def time_pages(
    backend: str, http: aiohttp.ClientSession, server: Server, viewer: Viewer, runs: int
) -> list[Timing]:
    found = []
    for page in PAGES:
        timing = Timing(backend, page.label, viewer.role)
        for _ in range(WARM_UP):
            await fetch(http, server, viewer, page)
        for _ in range(runs):
            timing.seconds.append((await timed(http, server, viewer, viewer.path(page)))[0])
        found.append(timing)
    return found


async def profile_slow(
    backend: str, http: aiohttp.ClientSession, server: Server, viewer: Viewer, timings: list[Timing]
) -> list[Slow]:
    """One more request of each page that missed the goal, its SQL timed and explained."""
    found = []
    engine = server.app[ENGINE]
    for page, timing in zip(PAGES, timings, strict=True):
        if timing.ms(0.95) < P95_GOAL_MS:
            continue
        with statement_timing(engine) as statements:
            await fetch(http, server, viewer, page)
        slowest = sorted(statements.values(), key=lambda s: -s.seconds)
        plans = [await explain(engine, s) for s in slowest[:SLOWEST_PLANS]]
        found.append(Slow(backend, page.label, viewer.role, slowest, plans))
    return found


async def measure_memory(
    backend: str,
    members: int,
    http: aiohttp.ClientSession,
    server: Server,
    viewer: Viewer,
    results: Results,
) -> None:
    """Each page's peak allocation while one request is served (after warm-up)."""
    for page in PAGES:
        for _ in range(WARM_UP):
            await fetch(http, server, viewer, page)
        gc.collect()
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            body = await fetch(http, server, viewer, page)
            peak = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
        key = (backend, page.label, viewer.role)
        footprint = results.footprints.setdefault(key, Footprint(*key))
        footprint.peak[members] = peak
        footprint.html[members] = len(body)
        footprint.rows[members] = body.count(b"<tr") - body.count(b"<thead")


async def migrate_and_load(url: str, rows: Dataset, progress: Console, label: str) -> Setup:
    """The database at `url` migrated, then `rows` inserted and analysed (not timed)."""
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
        progress.log(f"{label}: inserting {rows.total:,} rows")
        return await load(engine, url, rows, analyze=True)
    finally:
        await engine.dispose()


async def run_size(
    backend: str, url: str, dataset: console_data.Loaded, options: Options, results: Results,
    progress: Console,
) -> None:  # fmt: skip
    label = f"{backend}, {dataset.members:,} members"
    setup = await migrate_and_load(url, dataset.rows, progress, label)
    results.setups.append(
        f"{backend}, {dataset.members:,} members: {dataset.rows.total:,} rows inserted in "
        f"{setup.insert_seconds:.0f} s, {setup.statistics} {setup.analyze_seconds:.0f} s "
        f"(not timed)"
    )
    full = dataset.members == options.members
    if full and backend == options.backends[0]:
        tables_rows = ", ".join(f"{t.name} {len(t.rows):,}" for t in dataset.rows.tables)
        results.setups.append(f"rows at {dataset.members:,} members: {tables_rows}")
    async with serving(url) as server, aiohttp.ClientSession() as http:
        staff = dataset.staff
        admin = await sign_in(server, "admin", staff.admin_id, None)
        secretary = await sign_in(server, "secretary", staff.secretary_id, staff.secretary_branch)
        if full:
            progress.log(f"{backend}: the overview, cold")
            results.colds.append(await cold_overview(backend, http, server, admin))
            for viewer in (admin, secretary):
                progress.log(f"{backend}: {viewer.role}, {len(PAGES)} pages × {options.runs}")
                timings = await time_pages(backend, http, server, viewer, options.runs)
                results.timings += timings
                results.slow += await profile_slow(backend, http, server, viewer, timings)
        progress.log(f"{backend}, {dataset.members:,} members: memory")
        for viewer in (admin, secretary):
            await measure_memory(backend, dataset.members, http, server, viewer, results)


def database(
    backend: str, folder: Path, postgres: str
) -> contextlib.AbstractAsyncContextManager[str]:
    """A throwaway database of that kind (a SQLite file in `folder`, or a database on the
    PostgreSQL server at `postgres`); its URL."""
    if backend == "sqlite":
        return sqlite_database(folder)
    return postgres_database(postgres)


async def run(options: Options, progress: Console) -> Results:
    results = Results()
    for members in (options.small, options.members):
        progress.log(f"generating the data set: {members:,} members in {options.branches} branches")
        dataset = console_data.generate(members, options.branches, NOW.date())
        for backend in options.backends:
            with tempfile.TemporaryDirectory(prefix="qiyi-bench-console-") as folder:
                async with database(backend, Path(folder), options.postgres) as url:
                    await run_size(backend, url, dataset, options, results, progress)
        del dataset
        gc.collect()
    return results


# ---- the report --------------------------------------------------------------------------


@dataclass
class RunOptions:
    """The command line the console's benchmarks share (`add_run_options`)."""

    members: int
    branches: int
    backends: tuple[str, ...]
    postgres: str
    runs: int
    markdown: bool

    @classmethod
    def parsed(cls, args: argparse.Namespace, **more: Any) -> Self:
        """From what `add_run_options` and `--members` parsed, and `more` fields."""
        backends = backends_of(args.backend)
        return cls(
            args.members, args.branches, backends, args.postgres, args.runs, args.markdown, **more
        )


@dataclass
class Options(RunOptions):
    small: int  # the smaller roster memory is compared with


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.console",
        description="Time the console's pages for an admin and a secretary; check that "
        "their memory and size stay flat as the roster grows.",
    )
    parser.add_argument("--members", type=int, default=MEMBERS, help="members (10,000)")
    parser.add_argument(
        "--small", type=int, default=SMALL, help="the smaller roster memory is compared with"
    )
    add_run_options(parser)
    args = parser.parse_args(argv)
    if not 0 < args.small < args.members or args.branches < 1 or args.runs < 1:
        parser.error("need 0 < --small < --members, --branches ≥ 1, --runs ≥ 1")
    return Options.parsed(args, small=args.small)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """--branches, --backend, --postgres, --runs and --markdown, as the console's
    benchmarks take them (after their roster's size)."""
    parser.add_argument("--branches", type=int, default=BRANCHES, help="branches (40)")
    add_backend_option(parser)
    add_postgres_option(parser)
    parser.add_argument("--runs", type=int, default=RUNS, help="timed requests per page (60)")
    parser.add_argument("--markdown", action="store_true", help="print plain Markdown")


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")


def add_postgres_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=POSTGRES,
        help="a PostgreSQL server (a superuser): a throwaway database is made there",
    )


def backends_of(choice: str) -> tuple[str, ...]:
    """The databases `--backend` names: "both" is SQLite, then PostgreSQL."""
    return ("sqlite", "postgresql") if choice == "both" else (choice,)


def time_rows(results: Results, backends: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """Page × role, with p50 / p95 per backend; the cold overview first."""
    columns = ["page", "role", *(f"{b} p50 / p95 ms" for b in backends)]
    found = [
        ["概览, first request (cold)", "admin"]
        + [f"{c.seconds * 1000:.0f}" for b in backends for c in results.colds if c.backend == b]
    ]
    by_key = {(t.backend, t.page, t.role): t for t in results.timings}
    for role in ("admin", "secretary"):
        for page in PAGES:
            cells = []
            for b in backends:
                t = by_key[(b, page.label, role)]
                cells.append(f"{t.ms(0.5):.1f} / {t.ms(0.95):.1f}")
            found.append([page.label, role, *cells])
    return columns, found


def memory_rows(
    results: Results, backends: Sequence[str], small: int, members: int
) -> tuple[list[str], list[list[str]]]:
    columns = ["page", "role"]
    for b in backends:
        columns += [f"{b} peak KiB {small:,} → {members:,}", f"{b} ratio"]
    columns.append(f"HTML KiB {small:,} → {members:,}")
    columns.append(f"rows {small:,} → {members:,}")
    found = []
    for role in ("admin", "secretary"):
        for page in PAGES:
            cells = [page.label, role]
            for b in backends:
                f = results.footprints[(b, page.label, role)]
                cells.append(f"{f.peak[small] / 1024:.0f} → {f.peak[members] / 1024:.0f}")
                cells.append(f"{f.peak[members] / f.peak[small]:.2f}")
            f = results.footprints[(backends[0], page.label, role)]
            cells.append(f"{f.html[small] / 1024:.1f} → {f.html[members] / 1024:.1f}")
            cells.append(f"{f.rows[small]} → {f.rows[members]}")
            found.append(cells)
    return columns, found


def verdicts(results: Results, small: int, members: int) -> list[str]:
    slow = [t for t in results.timings if t.ms(0.95) >= P95_GOAL_MS]
    growing = [
        f for f in results.footprints.values() if f.peak[members] > GROWTH_BOUND * f.peak[small]
    ]
    larger = [f for f in results.footprints.values() if f.html[members] > 1.1 * f.html[small]]
    most = max(f.rows[members] for f in results.footprints.values())
    lines = [
        f"p95 < {P95_GOAL_MS:.0f} ms on every warm page: "
        + ("met" if not slow else "MISSED by " + ", ".join(
            f"{t.backend} {t.role} {t.page} ({t.ms(0.95):.0f} ms)" for t in slow))
    ]  # fmt: skip
    lines.append(
        f"memory ratio ≤ {GROWTH_BOUND} on every page: "
        + ("met" if not growing else "GROWS: " + ", ".join(
            f"{f.backend} {f.role} {f.page}" for f in growing))
    )  # fmt: skip
    page = directory.PAGE_SIZE
    filling = [f for f in larger if f.rows[small] < page and f.rows[members] <= page]
    growing_html = [f for f in larger if f not in filling]
    lines.append(
        f"HTML the same size (within 10 %) at {small:,} and {members:,} members"
        + ("" if not filling else ", but for lists shorter than a page at " f"{small:,}: "
           + ", ".join(f"{f.backend} {f.role} {f.page} ({f.rows[small]} → {f.rows[members]} "
                       "rows)" for f in filling))
        + ("" if not growing_html else "; GROWS: " + ", ".join(
            f"{f.backend} {f.role} {f.page}" for f in growing_html))
        + f"; the longest table on any page at {members:,} members: {most} rows "
        f"(a page is {page})"
    )  # fmt: skip
    for c in results.colds:
        lines.append(
            f"{c.backend}: the first overview took {c.seconds * 1000:.0f} ms "
            f"({'with' if c.with_standings else 'without'} the month standings, which were "
            f"there {c.standings_seconds:.1f} s after it was asked for)"
        )
    return lines


def command_line(postgres: str) -> str:
    """The command as typed, the PostgreSQL server's password hidden."""
    return shlex.join(w.replace(postgres, hidden(postgres)) for w in sys.orig_argv)


def header_lines(options: Options, pg_version: str | None) -> list[str]:
    lines = [
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs (shared, noisy: one run)",
        f"SQLite {sqlite3.sqlite_version}, SQLAlchemy {sqlalchemy.__version__}"
        + (f", PostgreSQL {pg_version}" if pg_version else ""),
        f"data: bench/reports.py's year 2026 for {options.members:,} members in "
        f"{options.branches} branches, with bench/console_data.py's rows; clock at "
        f"{NOW:%Y-%m-%d %H:%M} Asia/Shanghai; {WARM_UP} warm-up and {options.runs} timed "
        f"requests per page and role",
        f"command: {command_line(options.postgres)}",
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    progress = Console(stderr=True, log_path=False)
    try:
        pg_version = None
        if "postgresql" in options.backends:
            pg_version = asyncio.run(postgres_version(options.postgres))
        results = asyncio.run(run(options, progress))
    except BenchmarkError as problem:
        progress.print(f"[bold red]failed:[/] {problem}")
        return 1
    header = header_lines(options, pg_version)
    footer = results.setups + verdicts(results, options.small, options.members)
    times = time_rows(results, options.backends)
    memory = memory_rows(results, options.backends, options.small, options.members)
    if options.markdown:
        tables.print_markdown(*times, header, [])
        tables.print_markdown(*memory, [], footer)
    else:
        out = Console(width=200)
        tables.print_rich(out, header, tables.rich_table(*times), [])
        tables.print_rich(out, [], tables.rich_table(*memory), footer)
    for slow in results.slow:
        print(f"\n{slow.backend} {slow.role} {slow.page}: its statements, slowest first")
        for s in slow.statements:
            print(f"{s.seconds * 1000:8.1f} ms {s.calls:3d}×  {statement_label(s.sql)}")
        for s, plan in zip(slow.statements, slow.plans, strict=False):
            print("\n" + " ".join(s.sql.split()) + "\n  " + "\n  ".join(plan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
