"""Do heavy replies stall the event loop? Check-ins and `/healthz` while members ask for `排行`
and `我的月报`, through the real server, with 10,000 members and a month of activity.

The data set is `bench/reports.py`'s, for 10,000 members in 37 branches over 1–27 October
2026 (about 300,000 study entries and 400,000 points rows, notes, volunteer hours, lessons,
reads, quiz answers, materials), each member bound to a WeChat openid; the server's clock is
the wall clock moved to 28 October 2026, 10:00 in Shanghai, so the month so far is 27 days
and a morning. The server (`bench/loop_stall_server.py`: `create_app` on a loopback port, one
process) runs the code of this tree ("after") and, with `--before REV`, the code of an
older commit exported with `git archive` ("before": `排行` and `我的月报` scored the whole
organisation on the loop, per message).

For `--seconds`, at the same time:

- signed `学习 N` messages from random members, `--checkin-rate` a second;
- `排行` and `我的月报` (alternately) from random members, `--heavy-rate` a second;
- `GET /healthz`, polled every `--healthz-interval` ms (one after another).

Messages are sent at those rates whether or not earlier ones were answered (open loop), so
a stalled server shows as latency; every reply is checked. `--baseline` first measures the
same traffic with `今日` (a light reply) in place of `排行` and `我的月报` (this tree's
server): what the machine gives at that moment, to read the other rows against.

Printed: per database and code, p50 and p99 of the check-ins, of `/healthz` and of the heavy
replies, how many of each, and errors (a wrong reply, a status other than 200, a timeout of
10 s). The standings are cold at the start (the first `排行` computes them) and are kept
`--max-age` seconds (10 here instead of the default 300, so that several computations fall
inside the run).

    .venv/bin/python -m bench.loop_stall --before d01cee4
    .venv/bin/python -m bench.loop_stall --before d01cee4 --baseline --markdown \
        --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test

Every process, file and database it makes is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import io
import itertools
import os
import random
import shlex
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp
from defusedxml import ElementTree
from rich.console import Console
from sqlalchemy import insert

from bench import tables
from bench.databases import postgres_database, sqlite_database
from bench.reports import BRANCHES, build_dataset, load
from bench.webhook import (
    hidden,
    openid_of,
    percentile,
    post_message,
    run_server,
    server_environment,
)
from bot.channels.wechat_sample import signed_request
from bot.clock import SystemClock
from bot.rules import load_rules
from bot.settings import Settings
from data import migrate
from data.db import create_engine
from data.models import Binding

REPO = Path(__file__).resolve().parent.parent
SERVER_SCRIPT = Path(__file__).resolve().parent / "loop_stall_server.py"
TOKEN = "qiyi-bench-token"
ZONE = "Asia/Shanghai"
FIRST_DAY = dt.date(2026, 10, 1)
DAYS = 27  # 1–27 October; "today" is the 28th
NOW = dt.datetime(2026, 10, 28, 10, 0)  # local, Shanghai
MAX_DAY_MINUTES = 1_380
TIMEOUT_S = 10.0
P99_GOAL_MS = 50.0

HEAVY = ("排行", "我的月报")
MARKERS = {
    "checkin": ("已记录",),
    "排行": ("月排行】", "排行正在统计"),
    "我的月报": ("月月报】",),
    "今日": ("今日学习",),
}


@dataclass
class Latencies:
    seconds: list[float] = field(default_factory=list)
    errors: int = 0
    sample: str = ""
    busy: int = 0  # heavy replies that asked to try again

    def fail(self, what: str) -> None:
        self.errors += 1
        self.sample = self.sample or what[:200]

    def p(self, share: float) -> float:
        return percentile(sorted(self.seconds), share) * 1000


@dataclass
class Result:
    database: str
    code: str
    seconds: float
    load_average: float  # the machine's (1 minute) when the phase ended
    checkins: Latencies
    healthz: Latencies
    heavy: Latencies


class Messages:
    """Signed WeChat text messages from the members, on the server's (shifted) clock."""

    def __init__(self, members: int, offset: dt.timedelta, seed: int) -> None:
        self.settings = Settings(_env_file=None, wechat_token=TOKEN, timezone=ZONE)  # type: ignore[call-arg]
        self.clock = SystemClock(self.settings.zone)
        self.offset = offset
        self.members = members
        self.random = random.Random(seed)
        self.minutes: Counter[int] = Counter()
        self.msg_ids = itertools.count(7_000_000_000_000_000_000 + self.random.randrange(10**15))

    def member(self) -> int:
        return self.random.randint(1, self.members)

    def checkin(self) -> tuple[str, str]:
        member = self.member()
        minutes = self.random.randint(1, 30)
        if self.minutes[member] + minutes > MAX_DAY_MINUTES:
            return self.signed(member, "今日")
        self.minutes[member] += minutes
        return self.signed(member, f"学习 {minutes}")

    def signed(self, member: int, text: str) -> tuple[str, str]:
        now = int((self.clock.now() + self.offset).timestamp())
        openid = openid_of(member)
        query, body = signed_request(self.settings, openid, text, now, next(self.msg_ids))
        return f"/wechat?{urlencode(query)}", body


def reply_text(body: str) -> str:
    found = ElementTree.fromstring(body).find("Content")
    return found.text or "" if found is not None else ""


async def post(
    http: aiohttp.ClientSession, base: str, target: str, body: str, kind: str, into: Latencies
) -> None:
    sent = time.perf_counter()
    try:
        status, answer = await post_message(http, base, target, body)
    except (aiohttp.ClientError, TimeoutError) as problem:
        into.fail(repr(problem))
        into.seconds.append(time.perf_counter() - sent)  # at least this long: counted
        return
    into.seconds.append(time.perf_counter() - sent)
    text = reply_text(answer) if status == 200 else ""
    if not any(marker in text for marker in MARKERS[kind]) and "今日学习" not in text:
        into.fail(f"{status} {kind}: {text or answer}")
    if "正在统计" in text:
        into.busy += 1


async def load_phase(
    base: str, messages: Messages, seconds: float, checkin_rate: float, heavy_rate: float,
    heavy_kinds: tuple[str, str], interval: float,
) -> tuple[Latencies, Latencies, Latencies]:  # fmt: skip
    """Check-ins and heavy asks sent at steady rates (open loop: a request does not wait for
    the one before, so a stalled server shows as latency, not as fewer requests), and
    `/healthz` polled every `interval` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    found = (Latencies(), Latencies(), Latencies())
    checkin_times, healthz_times, heavy_times = found

    async def paced(rate: float, send: Callable[[int], Awaitable[None]]) -> None:
        if rate <= 0:
            return
        started = loop.time()
        sending: list[asyncio.Task[None]] = []
        for number in itertools.count():
            due = started + number / rate
            if due >= deadline:
                break
            await asyncio.sleep(max(0.0, due - loop.time()))
            sending.append(asyncio.create_task(send(number)))
        await asyncio.gather(*sending)

    async def polling(http: aiohttp.ClientSession) -> None:
        while loop.time() < deadline:
            sent = time.perf_counter()
            try:
                async with http.get(base + "/healthz") as response:
                    await response.read()
                healthz_times.seconds.append(time.perf_counter() - sent)
                if response.status != 200:
                    healthz_times.fail(f"{response.status}")
            except (aiohttp.ClientError, TimeoutError) as problem:
                healthz_times.fail(repr(problem))
                healthz_times.seconds.append(time.perf_counter() - sent)
            await asyncio.sleep(interval)

    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def checking_in(_number: int) -> None:
            target, body = messages.checkin()
            await post(http, base, target, body, "checkin", checkin_times)

        async def asking(number: int) -> None:
            kind = heavy_kinds[number % 2]
            target, body = messages.signed(messages.member(), kind)
            await post(http, base, target, body, kind, heavy_times)

        await asyncio.gather(
            paced(checkin_rate, checking_in), paced(heavy_rate, asking), polling(http)
        )
    return found


# ---- data and servers ---------------------------------------------------------------------


async def prepare(url: str, members: int, progress: Console) -> None:
    """The data set in a fresh database, every member bound to their openid."""
    dataset = build_dataset(load_rules().points, members, FIRST_DAY, DAYS)
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
        progress.log(f"inserting {dataset.total:,} rows")
        await load(engine, url, dataset, analyze=True)
        bound_at = dt.datetime.combine(FIRST_DAY, dt.time(8), ZoneInfo(ZONE))
        rows = [
            {"channel": "wechat", "external_id": openid_of(m), "member_id": m, "bound_at": bound_at}
            for m in range(1, members + 1)
        ]
        async with engine.begin() as connection:
            await connection.execute(insert(Binding), rows)
    finally:
        await engine.dispose()


def export_tree(revision: str, folder: Path) -> Path:
    """The source tree of `revision` (`git archive`), to run the server's code of then."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", revision],
        check=True,
        capture_output=True,
    ).stdout
    target = folder / f"tree-{revision}"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


@contextlib.asynccontextmanager
async def server(
    tree: Path, url: str, offset: dt.timedelta, max_age: int, folder: Path
) -> AsyncIterator[str]:
    env = server_environment(
        {
            "QIYI_DATABASE_URL": url,
            "QIYI_WECHAT_TOKEN": TOKEN,
            "QIYI_SCHEDULER": "off",
            "QIYI_TIMEZONE": ZONE,
            "QIYI_STANDINGS_MAX_AGE_SECONDS": str(max_age),
        }
    )
    env["PYTHONPATH"] = str(tree)
    # -P: not bench/ first on sys.path, where bench/console.py would hide the console package
    command = [sys.executable, "-P", str(SERVER_SCRIPT), "--port", "{port}"]
    command += ["--offset-seconds", str(offset.total_seconds())]
    async with run_server(command, env, folder, start_timeout=180) as running:
        yield f"http://127.0.0.1:{running.port}"


# ---- the run ------------------------------------------------------------------------------


@dataclass
class Options:
    members: int
    seconds: float
    checkin_rate: float
    heavy_rate: float
    healthz_interval_ms: float
    max_age: int
    before: str | None
    postgres: str | None
    markdown: bool
    baseline: bool


async def run_database(
    database: str, url: str, options: Options, trees: list[tuple[str, Path]], folder: Path,
    progress: Console,
) -> list[Result]:  # fmt: skip
    await prepare(url, options.members, progress)
    zone = ZoneInfo(ZONE)
    offset = NOW.replace(tzinfo=zone) - SystemClock(zone).now()
    found = []
    runs = [(code, tree, HEAVY) for code, tree in trees]
    if options.baseline:  # the same traffic with `今日` instead of the heavy replies
        runs.insert(0, ("after, 今日 instead", REPO, ("今日", "今日")))
    for code, tree, heavy_kinds in runs:
        progress.log(f"{database}, {code}: {options.seconds:g} s of load")
        messages = Messages(options.members, offset, seed=len(found))
        async with server(tree, url, offset, options.max_age, folder) as base:
            # A few check-ins first (not measured): the first messages of a process compile
            # templates and warm caches. The standings stay cold: computing them is measured.
            await load_phase(base, messages, 2.0, options.checkin_rate, 0.0, HEAVY, 0.1)
            started = time.perf_counter()
            checkins, healthz, heavy = await load_phase(
                base,
                messages,
                options.seconds,
                options.checkin_rate,
                options.heavy_rate,
                heavy_kinds,
                options.healthz_interval_ms / 1000,
            )
            elapsed = time.perf_counter() - started
        load_average = os.getloadavg()[0]
        found.append(Result(database, code, elapsed, load_average, checkins, healthz, heavy))
    return found


async def run(options: Options, progress: Console) -> list[Result]:
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="qiyi-stall-") as name:
        folder = Path(name)
        trees = [("after", REPO)]
        if options.before:
            trees.insert(0, (f"before ({options.before})", export_tree(options.before, folder)))
        async with sqlite_database(folder) as url:
            results += await run_database("sqlite", url, options, trees, folder, progress)
        if options.postgres:
            async with postgres_database(options.postgres) as url:
                results += await run_database("postgresql", url, options, trees, folder, progress)
    return results


COLUMNS = (
    "database",
    "code",
    "check-ins",
    "p50 ms",
    "p99 ms",
    "/healthz",
    "p50 ms",
    "p99 ms",
    "排行/我的月报",
    "p50 ms",
    "p99 ms",
    "errors",
)


def rows(results: list[Result]) -> list[list[str]]:
    return [
        [
            r.database,
            r.code,
            f"{len(r.checkins.seconds):,}",
            f"{r.checkins.p(0.50):.1f}",
            f"{r.checkins.p(0.99):.1f}",
            f"{len(r.healthz.seconds):,}",
            f"{r.healthz.p(0.50):.1f}",
            f"{r.healthz.p(0.99):.1f}",
            f"{len(r.heavy.seconds):,}" + (f" ({r.heavy.busy} 稍后)" if r.heavy.busy else ""),
            f"{r.heavy.p(0.50):.1f}" if r.heavy.seconds else "-",
            f"{r.heavy.p(0.99):.1f}" if r.heavy.seconds else "-",
            str(r.checkins.errors + r.healthz.errors + r.heavy.errors),
        ]
        for r in results
    ]


def command_line(options: Options) -> str:
    """The command as typed, with a PostgreSQL password hidden."""
    words = list(sys.orig_argv)
    if options.postgres:
        words = [word.replace(options.postgres, hidden(options.postgres)) for word in words]
    return shlex.join(words)


def footer(results: list[Result], options: Options) -> list[str]:
    lines = [
        f"command: {command_line(options)}",
        f"{options.members:,} members in {BRANCHES} branches, 1–{DAYS} October 2026; "
        f"{options.checkin_rate:g} check-ins/s and {options.heavy_rate:g} 排行/我的月报/s "
        f"(each on arrival, not after the previous reply), "
        f"/healthz every {options.healthz_interval_ms:g} ms, {options.seconds:g} s; "
        f"standings kept {options.max_age} s",
    ]
    lines.append(
        "machine load average (1 min) after each phase: "
        + ", ".join(f"{r.database} {r.code} {r.load_average:.1f}" for r in results)
    )
    for r in results:
        for name, times in (("check-ins", r.checkins), ("/healthz", r.healthz)):
            verdict = "met" if times.p(0.99) < P99_GOAL_MS else "MISSED"
            lines.append(
                f"{r.database}, {r.code}: {name} p99 {times.p(0.99):.1f} ms "
                f"(goal < {P99_GOAL_MS:g} ms): {verdict}"
            )
        for name, times in (("check-ins", r.checkins), ("/healthz", r.healthz), ("heavy", r.heavy)):
            if times.errors:
                lines.append(f"{r.database}, {r.code}: {name} errors, e.g. {times.sample}")
    return lines


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.loop_stall",
        description="Check-ins and /healthz while members ask for 排行 and 我的月报.",
    )
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--checkin-rate", type=float, default=20.0, help="check-ins/s (20)")
    parser.add_argument("--heavy-rate", type=float, default=10.0, help="排行+我的月报/s (10)")
    parser.add_argument("--healthz-interval", dest="healthz_ms", type=float, default=20.0)
    parser.add_argument("--max-age", type=int, default=10, help="standings kept, s (10)")
    parser.add_argument("--before", metavar="REV", help="also run the server of this commit")
    parser.add_argument("--postgres", metavar="URL", help="also on a throwaway PostgreSQL db")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument(
        "--baseline", action="store_true", help="first, the same traffic with 今日 instead"
    )
    args = parser.parse_args(argv)
    return Options(
        args.members,
        args.seconds,
        args.checkin_rate,
        args.heavy_rate,
        args.healthz_ms,
        args.max_age,
        args.before,
        args.postgres,
        args.markdown,
        args.baseline,
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    progress = Console(stderr=True, log_path=False)
    results = asyncio.run(run(options, progress))
    table_rows = rows(results)
    lines = footer(results, options)
    if options.markdown:
        tables.print_markdown(COLUMNS, table_rows, [], lines)
    else:
        console = Console()
        for row in [list(COLUMNS), *table_rows]:
            console.print(" | ".join(row), highlight=False, markup=False)
        for line in lines:
            console.print(line, highlight=False, markup=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
