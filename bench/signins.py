"""The whole plant signs in at a mobilisation meeting: 2,000 members send `签到 <code>` over
the WeChat webhook within 60 seconds (issue 13). None may be lost; p99 under 100 ms.

For each backend and case, a fresh database is seeded through the product's own functions
(bench/signin_crowd.py): 2,000 members in 40 branches, each bound to a WeChat openid, and an
admin who publishes a 培训 (training) of 120 minutes for everyone, starting 10 minutes from
now, so its sign-in window (30 minutes before the start) is open. A 培训 is the heavier of
the kinds: besides the attendance row, a sign-in credits the length as the day's study (a
study entry, the daily goal reached, its points). The server runs as an operator runs it —
`qiyi serve` on the wall clock: one process on SQLite, `--workers 2` (gunicorn) on PostgreSQL
— with the scheduler off; the activity's notices count as sent.

Each member sends one signed WeChat text message `签到 <code>` from their own openid, the
code of that moment computed from the activity's secret with `bot.activity_codes` (as read
off the organiser's screen; a run may cross the 2-minute rotation). Cases:

- steady: open loop, the 2,000 spread evenly over `--seconds` (60: 33 a second), each sent
  on time whether or not the earlier ones were answered;
- burst: all 2,000 as fast as the server answers them over `--connections` (32) keep-alive
  connections.

Before a case, `--warmup` (200) `活动` messages from members, not measured. Latency is
client side, from sending a request to having read its whole reply. Every reply must be the
success text with the training's minutes; afterwards the database must hold exactly 2,000
present attendances signed in by code and 2,000 study entries of 120 minutes for the
activity. Goal: p99 < 100 ms in the steady case, nothing lost in any.

    .venv/bin/python -m bench.signins --backend both --markdown
    .venv/bin/python -m bench.signins --backend sqlite --cases steady --seconds 20
    .venv/bin/python -m bench.signins --backend postgresql --profile steady  # py-spy

PostgreSQL: a database `bench_signins_<random>` is created on the `--postgres` server and
dropped afterwards; test databases are never touched. The load generator runs in this
process, on the same cores as the server and PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shlex
import sqlite3
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
from rich.console import Console

from bench import tables, webhook_profile
from bench.databases import postgres_database, postgres_version, remove_sqlite_files
from bench.signin_crowd import (
    LENGTH_MINUTES,
    ZONE,
    Kept,
    Load,
    SignIns,
    burst,
    kept,
    seed,
    steady,
    warm_up,
)
from bench.webhook import (
    CaseFailure,
    Usage,
    busy_cores_since,
    hidden,
    py_spy_path,
    qiyi_command,
    qiyi_environment,
    run_server,
    settle,
)
from bot.clock import SystemClock

P99_GOAL_MS = 100.0
BACKENDS = ("sqlite", "postgresql")
CASES = ("steady", "burst")


@dataclass(frozen=True)
class Options:
    backends: tuple[str, ...]
    cases: tuple[str, ...]
    members: int
    seconds: float
    connections: int
    warmup: int
    workers: int
    safe: bool
    postgres: str
    markdown: bool
    profile: str | None
    start_timeout: float = 60.0


@dataclass
class Row:
    backend: str
    case: str
    processes: int
    load: Load | None = None
    kept: Kept | None = None
    lost: list[str] = field(default_factory=list)
    server_cpu: float = 0.0  # cores, over the load
    busy_cores: float = 0.0  # the whole machine's, over the load
    load_average: float = 0.0  # the machine's (1 minute) at the end of the load
    codes: int = 0  # distinct codes sent (2 when the run crossed a rotation)
    failure: str = ""
    profile: webhook_profile.Profile | None = None

    @property
    def failed(self) -> bool:
        return bool(self.failure or self.lost or self.load is None or self.load.errors)


# ---- one case -----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def fresh_database(backend: str, options: Options, folder: Path) -> AsyncIterator[str]:
    if backend == "postgresql":
        async with postgres_database(options.postgres, prefix="bench_signins") as url:
            yield url
        return
    path = folder / "signins.db"
    try:
        yield f"sqlite+aiosqlite:///{path}"
    finally:
        remove_sqlite_files(path)


async def run_case(
    backend: str, case: str, options: Options, folder: Path, progress: Console, spy: bool
) -> Row:
    processes = options.workers if backend == "postgresql" else 1
    row = Row(backend, case, processes)
    clock = SystemClock(ZoneInfo(ZONE))
    async with fresh_database(backend, options, folder) as url:
        progress.log(f"{backend}/{case}: seeding {options.members:,} bound members")
        seeded = await seed(url, options.members, clock)
        signins = SignIns(seeded, clock, safe=options.safe)
        command = qiyi_command(options.workers if backend == "postgresql" else None)
        env = qiyi_environment(url, options.safe)
        async with run_server(command, env, folder, options.start_timeout) as server:
            base = f"http://127.0.0.1:{server.port}"
            # The server's helper process (the month's standings) imports for seconds after
            # it listens: not part of what a sign-in costs.
            waited, quiet = await settle(server)
            progress.log(
                f"{backend}/{case}: server {'quiet' if quiet else 'busy'} after {waited:.0f} s"
            )
            if options.warmup:
                warm = min(options.warmup, options.members)
                answered = await warm_up(base, signins, warm, min(8, warm))
                progress.log(f"{backend}/{case}: warm-up {answered}/{warm} answered")
            recording = None
            if spy:
                seconds = max(1, int(options.seconds) - 1) if case == "steady" else 3
                recording = asyncio.create_task(
                    webhook_profile.record(py_spy_path(), server.pid, seconds, folder / "spy.txt")
                )
            usage = Usage.start(server)
            if case == "steady":
                load = await steady(base, signins, options.members, options.seconds)
            else:
                load = await burst(base, signins, options.members, options.connections)
            row.busy_cores = busy_cores_since(usage.ticks)
            row.server_cpu = usage.server_cpu() / max(load.seconds, 1e-9)
            row.load_average = os.getloadavg()[0]
            if recording is not None:
                row.profile = await recording
        row.load, row.codes = load, len(signins.codes)
        row.kept = await kept(url, seeded.activity_id)
        row.lost = row.kept.lost(options.members)
    progress.log(
        f"{backend}/{case}: {load.rate:,.1f}/s, p50 {load.percentile_ms(0.5):.1f} ms, "
        f"p99 {load.percentile_ms(0.99):.1f} ms, max {load.percentile_ms(1.0):.1f} ms, "
        f"{load.errors} errors, kept {row.kept.present:,} present, "
        f"{row.kept.study_entries:,} study entries"
    )
    return row


@dataclass
class Run:
    rows: list[Row]
    pg_version: str
    idle_busy: float


async def run(options: Options, progress: Console) -> Run:
    from bench.webhook import background_cores

    idle_busy = await background_cores()
    pg_version = ""
    rows: list[Row] = []
    backends = list(options.backends)
    if "postgresql" in backends:
        try:
            pg_version = await postgres_version(options.postgres)
        except Exception as problem:
            reason = f"PostgreSQL unreachable at {hidden(options.postgres)}: {problem!r}"[:200]
            progress.log(f"[yellow]skipping PostgreSQL[/]: {reason}")
            rows += [
                Row("postgresql", case, options.workers, failure=reason) for case in options.cases
            ]
            backends.remove("postgresql")
    with tempfile.TemporaryDirectory(prefix="qiyi-signins-bench-") as name:
        folder = Path(name)
        for backend in backends:
            for case in options.cases:
                spy = options.profile == case
                try:
                    row = await run_case(backend, case, options, folder, progress, spy)
                except (CaseFailure, TimeoutError, aiohttp.ClientError) as problem:
                    reason = " ".join(str(problem).split())[:300] or repr(problem)
                    progress.log(f"[red]{backend}/{case} failed[/]: {reason}")
                    processes = options.workers if backend == "postgresql" else 1
                    row = Row(backend, case, processes, failure=reason)
                rows.append(row)
    return Run(rows, pg_version, idle_busy)


# ---- the report ---------------------------------------------------------------------------

COLUMNS = (
    "backend",
    "case",
    "processes",
    "sign-ins",
    "seconds",
    "per s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "max ms",
    "errors",
    "kept present / study",
    "server CPU",
    "machine busy",
)


def table_rows(rows: list[Row]) -> list[list[str]]:
    out: list[list[str]] = []
    for row in rows:
        if row.load is None or row.kept is None:
            out.append(
                [row.backend, row.case, str(row.processes), f"FAILED: {row.failure}"] + ["—"] * 10
            )
            continue
        load = row.load
        out.append(
            [
                row.backend,
                row.case,
                str(row.processes),
                f"{load.sent:,}",
                f"{load.seconds:.1f}",
                f"{load.rate:,.1f}",
                f"{load.percentile_ms(0.50):.1f}",
                f"{load.percentile_ms(0.95):.1f}",
                f"{load.percentile_ms(0.99):.1f}",
                f"{load.percentile_ms(1.0):.1f}",
                str(load.errors),
                f"{row.kept.present:,} / {row.kept.study_entries:,}",
                f"{row.server_cpu:.2f}",
                f"{row.busy_cores:.2f}",
            ]
        )
    return out


def verdicts(rows: list[Row], options: Options) -> list[str]:
    lines: list[str] = []
    for row in rows:
        label = f"{row.backend}/{row.case}"
        if row.load is None or row.kept is None:
            lines.append(f"{label}: not measured ({row.failure})")
            continue
        kept_line = "none lost" if not row.lost else "LOST: " + "; ".join(row.lost)
        replies = (
            "every reply the success text"
            if not row.load.errors
            else f"{row.load.errors} bad replies, first: {row.load.sample}"
        )
        line = f"{label}: {kept_line}; {replies}"
        if row.case == "steady":
            p99 = row.load.percentile_ms(0.99)
            met = "met" if p99 < P99_GOAL_MS else "MISSED"
            line += f"; p99 {p99:.1f} ms (goal < {P99_GOAL_MS:g} ms): {met}"
            line += f"; the latest request left {row.load.late * 1000:.0f} ms after its moment"
        if row.codes > 1:
            line += f"; {row.codes} codes used (the run crossed a rotation)"
        lines.append(line)
    return lines


def environment_lines(options: Options, done: Run) -> list[str]:
    cpus = os.cpu_count() or 0
    mode = "safe mode (AES)" if options.safe else "plain mode"
    return [
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{cpus} CPUs; SQLite {sqlite3.sqlite_version}, PostgreSQL {done.pg_version or 'not used'}",
        f"{options.members:,} members bound to WeChat, one 培训 of {LENGTH_MINUTES} minutes for "
        f"everyone; each member sends `签到 <code>` once, signed, {mode}; steady: open loop over "
        f"{options.seconds:g} s; burst: {options.connections} connections; "
        f"{options.warmup} `活动` messages before each case, not measured",
        f"the load generator (this process), the server and PostgreSQL share the {cpus} CPUs; "
        f"'server CPU' and 'machine busy' in cores over the run; {done.idle_busy:.2f} cores "
        f"were busy before the first case (other work on the machine)",
        f"command: {command_line(options)}",
    ]


def command_line(options: Options) -> str:
    words = list(sys.orig_argv)
    if options.postgres:
        words = [word.replace(options.postgres, hidden(options.postgres)) for word in words]
    return shlex.join(words)


def print_rich(rows: list[Row], header: list[str], footer: list[str]) -> None:
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=200)
    for line in header:
        console.print(line, highlight=False, soft_wrap=True, markup=False)
    table = Table(title="签到 over the WeChat webhook")
    for i, column in enumerate(COLUMNS):
        table.add_column(column, justify="left" if i < 2 else "right")
    for cells in table_rows(rows):
        table.add_row(*cells)
    console.print(table)
    for line in footer:
        console.print(line, highlight=False, soft_wrap=True, markup=False)


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.signins",
        description="2,000 members sign in to one activity over the WeChat webhook.",
    )
    parser.add_argument("--backend", choices=(*BACKENDS, "both"), default="both")
    parser.add_argument("--cases", default=",".join(CASES), help="steady, burst or both")
    parser.add_argument("--members", type=int, default=2_000)
    parser.add_argument("--seconds", type=float, default=60.0, help="steady: spread over this")
    parser.add_argument("--connections", type=int, default=32, help="burst: connections")
    parser.add_argument("--warmup", type=int, default=200, help="`活动` messages first")
    parser.add_argument("--workers", type=int, default=2, help="PostgreSQL: server processes")
    parser.add_argument("--safe", action="store_true", help="safe mode (AES) instead of plain")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
        help="server for PostgreSQL; a database bench_signins_<random> is made and dropped",
    )
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--profile", choices=CASES, help="py-spy on the server in this case")
    args = parser.parse_args(argv)
    cases = tuple(case.strip() for case in args.cases.split(",") if case.strip())
    if not cases or any(case not in CASES for case in cases):
        parser.error("--cases: steady, burst or both (comma-separated)")
    if not 1 <= args.members <= 100_000 or not 0.1 <= args.seconds <= 3_600:
        parser.error("--members between 1 and 100,000; --seconds between 0.1 and 3,600")
    if not 1 <= args.connections <= 1_000 or not 1 <= args.workers <= 16 or args.warmup < 0:
        parser.error("--connections 1–1,000, --workers 1–16, --warmup ≥ 0")
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    return Options(
        backends=backends,
        cases=cases,
        members=args.members,
        seconds=args.seconds,
        connections=args.connections,
        warmup=args.warmup,
        workers=args.workers,
        safe=args.safe,
        postgres=args.postgres,
        markdown=args.markdown,
        profile=args.profile,
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    progress = Console(stderr=True, log_path=False)
    done = asyncio.run(run(options, progress))
    header = environment_lines(options, done)
    footer = verdicts(done.rows, options)
    for row in done.rows:
        if row.profile is not None:
            footer += webhook_profile.report_lines(row.profile, f"{row.backend}/{row.case}")
    if options.markdown:
        tables.print_markdown(COLUMNS, table_rows(done.rows), header, footer)
    else:
        print_rich(done.rows, header, footer)
    return 1 if any(row.failed for row in done.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
