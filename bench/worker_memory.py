"""Memory of a server worker from 1,000 to 100,000 members (issue 15, goal 5: "memory per
worker flat from 1,000 to 100,000 members, RSS after the run, reported").

For each size (`--members 1000,10000,100000`): a fresh SQLite database migrated by the
product (`data.migrate.upgrade`), seeded with that many members in the branches of
`bench.webhook`, each bound to its WeChat openid (`bench.webhook.openid_of`). Seeding 100,000
members through `members.upsert_roster` and `members.bind` one by one is too slow, so every
size is seeded the same way, in bulk: Branch, Member and Binding rows inserted with Core
`insert(...)` executemany in chunks, with the column values the product's functions write
(`apply_roster`: roster_id, name, branch_id, role, joined_at = now, the rest at its
defaults; `bind`: channel "wechat", external_id = the openid, member_id, bound_at = now, the
rest at its defaults). tests/bench/test_worker_memory.py checks that `members.sender_state`
finds the bulk-seeded members bound, as it finds members seeded by `bench.webhook.seed_qiyi`.

Then `qiyi serve` starts on it as bench/webhook.py starts it (its `run_server`,
`qiyi_command`, `qiyi_environment`, `settle`), and `--messages` signed messages of the
webhook's mix (学习 N, 今日, 积分, unknown text; `bench.webhook.Traffic`, signed by the
product's `signed_request` in chunks right before they are sent) go to it from members drawn
at random over the whole roster, over `--concurrency` keep-alive connections. A reply is good
when it is 200 with `<Content>` and not the bot's apology; anything else counts as an error.

After the run, the resident set (VmRSS in /proc/PID/status) and its peak (VmHWM) of each of
the server's processes (its process group) are read: the worker(s) — `qiyi serve` itself, or
gunicorn's workers with `--workers 2` (the arbiter is left out) — and, on a line of its own,
the helper process each worker starts for the month's standings (multiprocessing's "spawn"
child). With several workers the largest is shown. The worker's resident set before the
messages (once the server is quiet) is shown too.

Verdict: the worker's RSS after the run at the largest size over the one at the smallest,
per backend; flat means at most ×1.10 (`FLAT_BOUND`).

`--postgres URL` runs the same sizes on a throwaway PostgreSQL database with `--workers 2`.

    .venv/bin/python -m bench.worker_memory --markdown
    .venv/bin/python -m bench.worker_memory --members 1000,100000 --messages 5000 \
        --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import platform
import re
import shlex
import sqlite3
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from rich.console import Console
from rich.table import Table
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench import tables
from bench.databases import postgres_database, postgres_version, sqlite_database
from bench.webhook import (
    ZONE,
    Case,
    CaseFailure,
    Server,
    Traffic,
    group_members,
    hidden,
    openid_of,
    post_message,
    qiyi_command,
    qiyi_environment,
    reply_checks,
    roster,
    run_server,
    settle,
)
from bot.clock import SystemClock
from data import migrate
from data.db import create_engine
from data.models import Binding, Branch, Member

SIZES = (1_000, 10_000, 100_000)
MESSAGES = 20_000
CONCURRENCY = 16
CHUNK = 5_000  # rows per executemany when seeding
SIGN_AHEAD = 1_000  # messages signed at a time, right before they are sent (fresh timestamps)
FLAT_BOUND = 1.10  # the worker's RSS at the largest size over the smallest: flat if ≤ this
START_TIMEOUT_S = 120.0
KIB_PER_MIB = 1024


# ---- seeding ----------------------------------------------------------------------------


def _chunks(rows: list[dict[str, object]], size: int = CHUNK) -> Iterator[list[dict[str, object]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


async def seed_bulk(engine: AsyncEngine, count: int, at: dt.datetime) -> None:
    """`count` members in `bench.webhook`'s branches, each bound to `openid_of(i)` on WeChat:
    the rows `members.upsert_roster` and `members.bind` would write, inserted in bulk."""
    people = roster(count)
    async with engine.begin() as connection:
        names = sorted({row.branch for _, row in people})
        await connection.execute(insert(Branch), [{"name": name} for name in names])
        branch_ids = dict((await connection.execute(select(Branch.name, Branch.id))).all())
        members = [
            {
                "roster_id": row.member_id,
                "name": row.name,
                "branch_id": branch_ids[row.branch],
                "role": row.role.value,
                "joined_at": at,
            }
            for _, row in people
        ]
        for chunk in _chunks(members):
            await connection.execute(insert(Member), chunk)
        member_ids = dict((await connection.execute(select(Member.roster_id, Member.id))).all())
        bindings = [
            {
                "channel": "wechat",
                "external_id": openid,
                "member_id": member_ids[row.member_id],
                "bound_at": at,
            }
            for openid, row in people
        ]
        for chunk in _chunks(bindings):
            await connection.execute(insert(Binding), chunk)
    if engine.dialect.name == "postgresql":
        async with engine.begin() as connection:
            await connection.execute(text("ANALYZE"))


async def prepare(database_url: str, count: int) -> None:
    """The product's schema (its migrations), then the members."""
    engine = create_engine(database_url)
    try:
        await migrate.upgrade(engine)
        await seed_bulk(engine, count, SystemClock(ZONE).now())
    finally:
        await engine.dispose()


# ---- memory of the server's processes ---------------------------------------------------


@dataclass(frozen=True)
class Memory:
    """A process's resident set now and its peak, in KiB."""

    rss_kib: int
    peak_kib: int

    @property
    def rss_mib(self) -> float:
        return self.rss_kib / KIB_PER_MIB

    @property
    def peak_mib(self) -> float:
        return self.peak_kib / KIB_PER_MIB


STATUS_LINE = re.compile(r"^(VmRSS|VmHWM):\s*(\d+)\s*kB\s*$", re.MULTILINE)


def parse_status(status: str) -> Memory | None:
    """VmRSS and VmHWM of a /proc/PID/status text; None when it has neither (a zombie)."""
    found = {name: int(value) for name, value in STATUS_LINE.findall(status)}
    if "VmRSS" not in found:
        return None
    return Memory(found["VmRSS"], found.get("VmHWM", found["VmRSS"]))


def process_role(pid: int, leader: int, cmdline: str, workers: int) -> str:
    """ "helper" (the standings' "spawn" child), "tracker" (multiprocessing's resource
    tracker), "arbiter" (gunicorn's parent, with several workers) or "worker"."""
    if "resource_tracker" in cmdline:
        return "tracker"
    if "spawn_main" in cmdline:
        return "helper"
    if workers > 1 and pid == leader:
        return "arbiter"
    return "worker"


def read_cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def read_memory(pid: int) -> Memory | None:
    with contextlib.suppress(OSError):
        return parse_status(Path(f"/proc/{pid}/status").read_text())
    return None


def group_memory(leader: int, workers: int) -> dict[str, list[Memory]]:
    """The memory of each live process of the server's group, by role."""
    by_role: dict[str, list[Memory]] = {}
    for pid in group_members(leader):
        memory = read_memory(pid)
        if memory is not None:
            role = process_role(pid, leader, read_cmdline(pid), workers)
            by_role.setdefault(role, []).append(memory)
    return by_role


# ---- the messages -----------------------------------------------------------------------


@dataclass
class Sent:
    messages: int = 0
    errors: int = 0
    sample: str = ""
    seconds: float = 0.0


async def send(case: Case, server: Server, traffic: Traffic, count: int, concurrency: int) -> Sent:
    """`count` messages of the mix over `concurrency` connections, signed `SIGN_AHEAD` at a
    time; every reply checked."""
    expect, reject = reply_checks(case)
    base = f"http://127.0.0.1:{server.port}"
    sent = Sent()
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def one(http: aiohttp.ClientSession, target: str, body: str) -> None:
        try:
            status, answer = await post_message(http, base, target, body)
            good = status == 200 and expect in answer and reject not in answer
            problem = "" if good else f"{status} {answer[:160]}"
        except (aiohttp.ClientError, TimeoutError) as error:
            problem = repr(error)
        sent.messages += 1
        if problem:
            sent.errors += 1
            sent.sample = sent.sample or " ".join(problem.split())

    async def worker(http: aiohttp.ClientSession, pool: Iterator[tuple[str, str]]) -> None:
        for target, body in pool:
            await one(http, target, body)

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        for start in range(0, count, SIGN_AHEAD):
            pool = iter(traffic.pool(min(SIGN_AHEAD, count - start)))
            await asyncio.gather(*(worker(http, pool) for _ in range(concurrency)))
    sent.seconds = loop.time() - started
    return sent


# ---- one size ---------------------------------------------------------------------------


@dataclass
class Measured:
    members: int
    backend: str  # "SQLite" or "PostgreSQL"
    workers: int
    sent: Sent = field(default_factory=Sent)
    before: list[Memory] = field(default_factory=list)  # the worker(s), once quiet
    after: dict[str, list[Memory]] = field(default_factory=dict)  # by role, after the run
    failed: str = ""

    def largest(self, role: str) -> Memory | None:
        found = self.after.get(role, [])
        return max(found, key=lambda memory: memory.rss_kib) if found else None


@contextlib.asynccontextmanager
async def database(backend: str, folder: Path, postgres: str) -> AsyncIterator[str]:
    if backend == "PostgreSQL":
        async with postgres_database(postgres, prefix="qiyi_memory") as url:
            yield url
    else:
        async with sqlite_database(folder) as url:
            yield url


async def measure(
    size: int, backend: str, options: Options, folder: Path, progress: Console
) -> Measured:
    workers = 2 if backend == "PostgreSQL" else 1
    database_kind = "postgresql" if backend == "PostgreSQL" else "sqlite"
    case = Case(f"m{size}", f"Qiyi, {backend}", "qiyi", database_kind, workers, False)
    result = Measured(size, backend, workers)
    async with database(backend, folder, options.postgres) as url:
        progress.log(f"{backend} {size:,}: seeding {size:,} bound members in bulk")
        await prepare(url, size)
        env = qiyi_environment(url, safe=False)
        command = qiyi_command(workers if database_kind == "postgresql" else None)
        async with run_server(command, env, folder, START_TIMEOUT_S) as server:
            waited, quiet = await settle(server)
            progress.log(
                f"{backend} {size:,}: {'quiet' if quiet else 'still busy'} ({waited:.0f} s)"
            )
            result.before = group_memory(server.pid, workers).get("worker", [])
            traffic = Traffic(case, seed=size)
            traffic.openids = [openid_of(i) for i in range(size)]  # the whole roster
            result.sent = await send(case, server, traffic, options.messages, options.concurrency)
            result.after = group_memory(server.pid, workers)
    worker = result.largest("worker")
    progress.log(
        f"{backend} {size:,}: {result.sent.messages:,} messages in {result.sent.seconds:.0f} s, "
        f"{result.sent.errors} errors; worker RSS {worker.rss_mib if worker else 0:.1f} MiB"
    )
    return result


# ---- the report -------------------------------------------------------------------------

COLUMNS = (
    "members",
    "backend",
    "messages",
    "errors",
    "worker RSS MiB before",
    "worker RSS MiB after",
    "worker peak MiB",
    "helper RSS MiB",
)


def mib(memory: Memory | None, peak: bool = False) -> str:
    if memory is None:
        return "—"
    return f"{memory.peak_mib if peak else memory.rss_mib:.1f}"


def rows(results: Sequence[Measured]) -> list[list[str]]:
    table: list[list[str]] = []
    for r in results:
        backend = r.backend + (f", {r.workers} workers" if r.workers > 1 else "")
        if r.failed:
            table.append([f"{r.members:,}", backend, "FAILED", *["—"] * 5])
            continue
        before = max(r.before, key=lambda memory: memory.rss_kib) if r.before else None
        errors = str(r.sent.errors)
        table.append(
            [
                f"{r.members:,}",
                backend,
                f"{r.sent.messages:,}",
                errors,
                mib(before),
                mib(r.largest("worker")),
                mib(r.largest("worker"), peak=True),
                mib(r.largest("helper")),
            ]
        )
    return table


def verdicts(results: Sequence[Measured]) -> list[str]:
    """Per backend: the worker's RSS after the run at the largest size over the smallest."""
    lines: list[str] = []
    for backend in dict.fromkeys(r.backend for r in results):
        measured = sorted(
            (r for r in results if r.backend == backend and not r.failed and r.largest("worker")),
            key=lambda r: r.members,
        )
        if len(measured) < 2:
            lines.append(f"{backend}: not judged (fewer than two sizes measured)")
            continue
        low, high = measured[0], measured[-1]
        small, large = low.largest("worker"), high.largest("worker")
        assert small is not None and large is not None
        ratio = large.rss_kib / small.rss_kib
        ok = ratio <= FLAT_BOUND
        lines.append(
            f"{backend}: worker RSS after the run at {high.members:,} / at {low.members:,} "
            f"members = {large.rss_mib:.1f} / {small.rss_mib:.1f} MiB = ×{ratio:.2f} "
            f"(goal: flat, ≤ ×{FLAT_BOUND:.2f}): {'met' if ok else 'MISSED'}"
        )
    for r in results:
        if r.failed:
            lines.append(f"{r.backend} {r.members:,}: FAILED: {r.failed[:300]}")
        elif r.sent.errors:
            lines.append(f"{r.backend} {r.members:,}: first bad reply: {r.sent.sample[:160]}")
    return lines


@dataclass
class Options:
    sizes: list[int]
    messages: int
    concurrency: int
    postgres: str
    markdown: bool


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.worker_memory",
        description="RSS of a Qiyi worker after a run of webhook messages, from 1,000 to "
        "100,000 bound members.",
    )
    parser.add_argument(
        "--members",
        default=",".join(str(size) for size in SIZES),
        help="comma-separated roster sizes (default 1000,10000,100000)",
    )
    parser.add_argument("--messages", type=int, default=MESSAGES, help="messages per size")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, help="connections")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default="",
        help="also run the sizes on a throwaway database on this server, --workers 2",
    )
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    try:
        sizes = [int(size) for size in args.members.split(",") if size.strip()]
    except ValueError:
        parser.error("--members: comma-separated numbers, e.g. 1000,100000")
    if not sizes or any(not 1 <= size <= 1_000_000 for size in sizes):
        parser.error("--members: each size between 1 and 1000000")
    if not 1 <= args.messages <= 1_000_000 or not 1 <= args.concurrency <= 256:
        parser.error("--messages between 1 and 1000000, --concurrency between 1 and 256")
    return Options(sorted(sizes), args.messages, args.concurrency, args.postgres, args.markdown)


async def run(options: Options, progress: Console) -> tuple[list[Measured], str]:
    backends = ["SQLite"]
    pg_version = ""
    if options.postgres:
        try:
            pg_version = await postgres_version(options.postgres)
            backends.append("PostgreSQL")
        except Exception as problem:
            progress.log(f"[yellow]PostgreSQL skipped[/]: {problem!r}"[:200])
    results: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="qiyi-worker-memory-") as name:
        for backend in backends:
            for size in options.sizes:
                try:
                    results.append(await measure(size, backend, options, Path(name), progress))
                except (CaseFailure, TimeoutError) as problem:
                    progress.log(f"[red]{backend} {size:,} failed[/]: {problem}")
                    workers = 2 if backend == "PostgreSQL" else 1
                    results.append(Measured(size, backend, workers, failed=str(problem)))
    return results, pg_version


def header_lines(options: Options, pg_version: str) -> list[str]:
    words = list(sys.orig_argv)
    if options.postgres:
        words = [word.replace(options.postgres, hidden(options.postgres)) for word in words]
    return [
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"SQLite {sqlite3.sqlite_version}, PostgreSQL {pg_version or 'not used'}",
        f"per size: {options.messages:,} signed messages (50% 学习 N, 20% 今日, 20% 积分, 10% "
        f"unknown) from members at random over the whole roster, {options.concurrency} "
        f"connections; members seeded in bulk (the product's column values)",
        "RSS = VmRSS after the run, peak = VmHWM, from /proc/PID/status; with several "
        "workers, the largest; the helper = the standings' process of a worker",
        f"command: {shlex.join(words)}",
    ]


def print_rich(results: Sequence[Measured], header: list[str], footer: list[str]) -> None:
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    for line in header:
        console.print(line, highlight=False, soft_wrap=True, markup=False)
    table = Table(title="Memory of a Qiyi worker by roster size")
    for i, column in enumerate(COLUMNS):
        table.add_column(column, justify="left" if i < 2 else "right")
    for row in rows(results):
        table.add_row(*row)
    console.print(table)
    for line in footer:
        console.print(line, highlight=False, soft_wrap=True, markup=False)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    progress = Console(stderr=True, log_path=False)
    results, pg_version = asyncio.run(run(options, progress))
    header, footer = header_lines(options, pg_version), verdicts(results)
    if options.markdown:
        tables.print_markdown(COLUMNS, rows(results), header, footer)
    else:
        print_rich(results, header, footer)
    return 1 if any(r.failed or r.sent.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
