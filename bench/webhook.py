"""Load benchmark of the WeChat webhook (`POST /wechat`), server against load generator on
127.0.0.1.

Every server runs as its own process on a free loopback port:

(a) `bench/webhook_bare.py`: a bare aiohttp handler returning a constant XML reply — the
    ceiling of aiohttp on this machine;
(a′) `bench/webhook_floor.py` (`--cases a-floor`, for reference): aiohttp with the signature
    checked, the message parsed and answered by wechatpy, and one SQLite write per message —
    the floor under any bot on this stack that reads the message and keeps anything;
(b) `qiyi serve` on a fresh SQLite file, 1 process, plain mode and safe mode (AES);
(c) `qiyi serve --workers 1` and `--workers 2` on a throwaway PostgreSQL database
    (`--postgres URL`; skipped with a note when the server cannot be reached);
(d) `bench/webhook_werobot.py`: the same check-in flow the way most WeChat bots are written
    today — WeRoBot with a sqlite3 write per check-in, run with WeRoBot's own server
    (`robot.run(server=…)`), plain mode and safe mode;
(d′) `bench/webhook_peer.py` (`--cases d-same`): WeRoBot on the same server doing the *same*
    check-in work as Qiyi with plain sqlite3 — the MsgId deduped in the database (the same
    reply on a retry), the member by openid, the day so far, the entry within the day's
    cap, the points by the product's rules, the streak, a reply from the texts of Qiyi's
    templates; one transaction a message, Qiyi's indexes and pragmas. (b)/(d′) compares
    Qiyi with a hand-written bot doing the same job.

The bot's databases are seeded before their server starts (not timed) with 1,000 members,
each bound to a WeChat openid, through the product's own functions (`data.members`). Once a
server listens, nothing is sent until its processes are quiet (under 0.05 cores over a
second, for up to 2 minutes): Qiyi's helper process for the month's standings spends
seconds of CPU on its imports, minutes when the machine is busy, and would otherwise be
measured with the server.

The load: wrk (when installed: `apt-get install wrk`) with `bench/webhook_wrk.lua`, or else
an aiohttp client in this process, with `--concurrency` connections for `--seconds` after a
`--warmup`. Right before each phase the requests are built and signed (fresh timestamps,
each with its own MsgId) by the product's `signed_request`: ~50% `学习 N` (N 1–60), 20%
`今日`, 20% `积分`, 10% unknown text, from the 1,000 members at random. A response is good
when it is 200 with `<Content>` in its XML (safe mode: `<Encrypt>`); before the load, one
reply of each kind is read (decrypted in safe mode) and must say what that command says.
The bot's apology for an unexpected error counts as an error too (in safe mode, where it is
encrypted, by the "failed to answer message" lines of the server's log). Timeouts (10 s),
connection errors and other statuses count. A case with more than 1% errors failed.

Open loop (`--open-rate 300,1000`, latency as members feel it): after its closed-loop phase,
each case is sent each rate for `--open-seconds` on a fixed schedule whatever the replies
(`bench/open_loop.py`): request i is due at start + i / rate, and its latency runs from that
due time to the full reply, so the queue a slow server builds counts (wrk's closed loop
would wait instead, and not measure it); a request without a reply (a 10 s timeout) counts
as slower than any ("no reply"). A second table gives p50/p95/p99/max, errors, the
requests the generator itself sent more than 5 ms late and its lag (which is inside every
latency: the figures err on the slow side), and the CPU used. The generator is a lean
keep-alive HTTP client in Python (`bench/open_loop.py`), one process per 500 requests a
second (`--open-clients` to choose): one Python process cannot keep a schedule much faster
on a small machine (wrk2, which would, is not packaged). Requests in flight are
capped at 2,000 per client process (`--open-max-in-flight`); one that waits for a slot is
late. Open-loop errors are reported per rate, not counted in the run's exit status.

WeRoBot's server: bottle's adapters, the fastest installed of bjoern (C, one process, one
thread, keep-alive; 5,700 req/s here), waitress and gunicorn (one sync worker; both about
2,100), wsgiref (2,100, p99 1.7 s). WeRoBot's default, "auto", takes waitress when it is
installed and wsgiref otherwise; meinheld does not build on Python 3.11.

    .venv/bin/pip install werobot bjoern py-spy   # bjoern: `apt-get install libev-dev`
    .venv/bin/python -m bench.webhook
    .venv/bin/python -m bench.webhook --markdown --seconds 10 --concurrency 32 \
        --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test
    .venv/bin/python -m bench.webhook --cases b --profile b   # py-spy's view of (b)
    .venv/bin/python -m bench.webhook --cases a-floor,b,c2,d-same --open-rate 300,1000 \
        --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test

The machine has few cores: the load generator, the server and PostgreSQL share them. The
table says how much CPU the server, the load generator and everything else used. Every
process, file and database the run makes is removed at the end; each case has a time limit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import importlib.util
import itertools
import math
import os
import platform
import random
import re
import resource
import secrets
import shlex
import shutil
import signal
import socket
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp
import yarl
from defusedxml import ElementTree
from rich.console import Console
from rich.table import Table
from sqlalchemy import make_url, text
from sqlmodel import select
from wechatpy.crypto import WeChatCrypto

from bench import open_loop, tables, webhook_profile
from bench.databases import postgres_database, postgres_version, remove_sqlite_files
from bench.open_loop import OpenLoad
from bench.webhook_profile import Profile, ProfileError
from bot.channels.wechat_sample import signed_request
from bot.clock import SystemClock, unix_seconds
from bot.messages import Sender
from bot.settings import Settings
from data import members, migrate
from data.db import create_engine, session_factory, transaction
from data.members import RosterRow
from data.models import Member, Role

REPO = Path(__file__).resolve().parent.parent
LUA_SCRIPT = Path(__file__).resolve().parent / "webhook_wrk.lua"
ZONE = ZoneInfo("Asia/Shanghai")

MEMBERS = 1_000
BRANCHES = [f"第{i + 1}党支部" for i in range(37)]
TOKEN = "qiyi-bench-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters
APPID = "wxqiyibench0000001"

# The mix: in every block of ten requests, five check-ins, two 今日, two 积分, one unknown.
MIX = ["checkin"] * 5 + ["today"] * 2 + ["points"] * 2 + ["unknown"]
UNKNOWN_TEXTS = ("你好", "在吗", "谢谢", "这个怎么弄")
MAX_DAY_MINUTES = 1_380  # stay under the product's 24 h a day: a check-in past it is a 今日
MAX_POOL = 400_000  # requests built for one phase at most
ERROR_LIMIT = 0.01  # a case with more errors than this share failed

# What each kind of reply must say (checked on a few replies before the load).
QIYI_MARKERS = {"checkin": "已记录", "today": "今日学习", "points": "积分卡", "unknown": "没看懂"}
WEROBOT_MARKERS = {
    "checkin": "已记录学习",
    "today": "今日已学习",
    "points": "积分",
    "unknown": "没看懂",
}
BARE_MARKERS = dict.fromkeys(QIYI_MARKERS, "收到")
QIYI_APOLOGY = "系统开小差"  # content/templates/error.j2: an unexpected error, answered 200
# Qiyi's log line for an unexpected error, answered 200 with the apology: in safe mode the
# load generator cannot see the apology in the encrypted reply, so the log is counted.
QIYI_FAILURE_LINE = "failed to answer message"
# Any line of a server's log that says something went wrong (a note, not a count).
TROUBLE_LINES = re.compile(r"Traceback|Catch an exception|\bERROR\b|\[ERROR\]")

# The goals.
CEILING_SHARE_GOAL = 0.40  # (b) ≥ 40% of (a)
P99_GOAL_MS = 50.0  # p99 under load, for the bot's cases
WEROBOT_FACTOR_GOAL = 3.0  # (b) ≥ 3× (d)
FLOOR_SHARE_GOAL = 0.30  # (b) ≥ 30% of (a′) (issue 15)
OPEN_P99_GOAL_MS = 20.0  # open loop: p99 at OPEN_GOAL_RATE, for the bot's cases (issue 15)
OPEN_GOAL_RATE = 300.0  # messages a second: ten times a 10,000-member evening peak

# Open loop: requests a second one client process is given (more: several processes), and
# the pause before each open-loop phase (the last phase's queue drained).
OPEN_RATE_PER_CLIENT = 500.0
OPEN_PAUSE_S = 1.0

WEROBOT_SERVERS = ("bjoern", "waitress", "gunicorn", "wsgiref")  # fastest first, as measured


class CaseFailure(Exception):
    """A case could not be measured (the server did not start, a reply was wrong)."""


# ---- the cases --------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    server: str  # "bare", "floor", "qiyi", "werobot" or "peer"
    database: str | None  # "sqlite", "postgresql" or None
    processes: int
    safe: bool

    @property
    def markers(self) -> dict[str, str]:
        markers = {"bare": BARE_MARKERS, "floor": BARE_MARKERS, "qiyi": QIYI_MARKERS}
        # The peer (d′) answers with the texts of Qiyi's templates.
        return {**markers, "werobot": WEROBOT_MARKERS, "peer": QIYI_MARKERS}[self.server]

    @property
    def on_werobot(self) -> bool:
        return self.server in ("werobot", "peer")


CASES = (
    Case("a", "(a) bare aiohttp, constant reply", "bare", None, 1, False),
    Case("a-floor", "(a′) aiohttp + wechatpy + one sqlite3 write", "floor", "sqlite", 1, False),
    Case("b", "(b) Qiyi, SQLite", "qiyi", "sqlite", 1, False),
    Case("b-safe", "(b) Qiyi, SQLite, safe mode", "qiyi", "sqlite", 1, True),
    Case("c1", "(c) Qiyi, PostgreSQL, --workers 1", "qiyi", "postgresql", 1, False),
    Case("c2", "(c) Qiyi, PostgreSQL, --workers 2", "qiyi", "postgresql", 2, False),
    Case("d", "(d) WeRoBot + sqlite3", "werobot", "sqlite", 1, False),
    Case("d-safe", "(d) WeRoBot + sqlite3, safe mode", "werobot", "sqlite", 1, True),
    Case("d-same", "(d′) WeRoBot + sqlite3, Qiyi's check-in work", "peer", "sqlite", 1, False),
)
CASE_KEYS = [case.key for case in CASES]


@dataclass
class Load:
    """What one load phase measured."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    wraps: int = 0
    sample: str = ""
    loadgen_cpu: float = 0.0  # CPU seconds of the load generator

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


@dataclass
class OpenResult:
    """What one open-loop phase (one rate) measured, with the server's CPU meanwhile."""

    load: OpenLoad
    server_errors: int = 0
    server_cpu: float = 0.0
    busy_cores: float = 0.0

    @property
    def errors(self) -> int:
        return self.load.errors + self.server_errors

    @property
    def failed(self) -> bool:
        return self.errors / max(1, self.load.scheduled) > ERROR_LIMIT or self.load.replies == 0


@dataclass
class Result:
    case: Case
    load: Load | None = None
    open: list[OpenResult] = field(default_factory=list)  # one per --open-rate
    server_errors: int = 0  # errors the server logged during the measured phase
    server_cpu: float = 0.0  # CPU seconds of the server's processes during the measured phase
    busy_cores: float = 0.0  # all CPUs' busy time during the measured phase, in cores
    notes: list[str] = field(default_factory=list)
    skipped: str = ""

    @property
    def errors(self) -> int:
        return (self.load.errors if self.load else 0) + self.server_errors

    @property
    def failed(self) -> bool:
        if self.load is None:
            return True
        total = max(1, self.load.requests)
        return self.errors / total > ERROR_LIMIT or self.load.requests == 0


# ---- the members and their messages -----------------------------------------------------


def openid_of(index: int) -> str:
    """A 28-character openid, like the platform's."""
    return f"oQiyiBench{index:018d}"


def roster(count: int = MEMBERS) -> list[tuple[str, RosterRow]]:
    """`count` members in the branches, each with the openid they are bound to."""
    return [
        (
            openid_of(i),
            RosterRow(str(100_000 + i), f"党员{i:04d}", BRANCHES[i % len(BRANCHES)], Role.MEMBER),
        )
        for i in range(count)
    ]


def qiyi_settings(database_url: str, *, safe: bool = False) -> Settings:
    """Qiyi's settings as a benchmark's server has them (`qiyi_environment`), for signing
    its requests: the bench's token, Shanghai's day, no scheduler; safe mode's key when
    `safe`."""
    values: dict[str, object] = {
        "database_url": database_url,
        "wechat_token": TOKEN,
        "timezone": "Asia/Shanghai",
        "scheduler": "off",
    }
    if safe:
        values.update(wechat_aes_key=AES_KEY, wechat_appid=APPID)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


class Traffic:
    """Builds one case's messages: the mix, at random members, each with its own MsgId;
    keeps every member's minutes of the day under the product's limit across phases."""

    def __init__(self, case: Case, seed: int) -> None:
        self.settings = qiyi_settings("sqlite+aiosqlite:///:memory:", safe=case.safe)
        # Qiyi and its same-work peer refuse a day past 24 h; the others have no limit.
        self.day_limit = case.server in ("qiyi", "peer")
        self.openids = [openid_of(i) for i in range(MEMBERS)]
        self.random = random.Random(seed)
        self.minutes: Counter[str] = Counter()
        self.msg_ids = itertools.count(6_000_000_000_000_000_000 + secrets.randbelow(10**15))
        self.converted = 0  # check-ins sent as 今日 instead, to stay under the day's limit

    def text(self, kind: str, openid: str) -> str:
        if kind == "checkin":
            minutes = self.random.randint(1, 60)
            if self.day_limit and self.minutes[openid] + minutes > MAX_DAY_MINUTES:
                self.converted += 1
                return "今日"
            self.minutes[openid] += minutes
            return f"学习 {minutes}"
        if kind == "today":
            return "今日"
        if kind == "points":
            return "积分"
        return self.random.choice(UNKNOWN_TEXTS)

    def messages(self, count: int) -> Iterator[tuple[str, str]]:
        """(openid, text) pairs in the mix."""
        block: list[str] = []
        for _ in range(count):
            if not block:
                block = MIX.copy()
                self.random.shuffle(block)
            openid = self.random.choice(self.openids)
            yield openid, self.text(block.pop(), openid)

    def signed(self, openid: str, text_: str) -> tuple[str, str]:
        """The path with its signed query, and the body (encrypted in safe mode)."""
        now = unix_seconds(SystemClock(ZONE))
        query, body = signed_request(self.settings, openid, text_, now, next(self.msg_ids))
        return f"/wechat?{urlencode(query)}", body

    def pool(self, count: int) -> list[tuple[str, str]]:
        return [self.signed(openid, text_) for openid, text_ in self.messages(count)]


def write_pool(pool: list[tuple[str, str]], path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        for target, body in pool:
            if "\n" in body or "\t" in body:
                raise CaseFailure("a request body has a newline or a tab")
            out.write(f"{target}\t{body}\n")


# ---- databases and seeding --------------------------------------------------------------


async def seed_qiyi(database_url: str) -> None:
    """The 1,000 members, each bound to its openid, through the product's functions."""
    engine = create_engine(database_url)
    try:
        await migrate.upgrade(engine)
        sessions = session_factory(engine)
        now = SystemClock(ZONE).now()
        people = roster()
        async with transaction(sessions) as session:
            await members.upsert_roster(session, [row for _, row in people], now)
        async with transaction(sessions) as session:
            found = {m.roster_id: m for m in await session.exec(select(Member))}
            for openid, row in people:
                await members.bind(session, Sender("wechat", openid), found[row.member_id], now)
        if engine.dialect.name == "postgresql":
            async with engine.begin() as connection:
                await connection.execute(text("ANALYZE"))
    finally:
        await engine.dispose()


def seed_werobot(path: Path, same_work: bool = False) -> None:
    if same_work:
        from bench.webhook_peer import seed
    else:
        from bench.webhook_werobot import seed

    seed(str(path), [(openid, row.member_id, row.name) for openid, row in roster()])


# ---- servers ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_environment(extra: dict[str, str]) -> dict[str, str]:
    """This environment without any QIYI_ setting of the developer's, plus the case's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QIYI_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


@dataclass
class Server:
    process: asyncio.subprocess.Process
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def log_since(self, offset: int) -> str:
        with self.log.open("rb") as source:
            source.seek(offset)
            return source.read().decode("utf-8", errors="replace")

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.log_since(0).splitlines()[-lines:])


@contextlib.asynccontextmanager
async def run_server(
    command: list[str], env: dict[str, str], folder: Path, start_timeout: float
) -> AsyncIterator[Server]:
    """Start the server in its own process group; stop the whole group afterwards."""
    port = free_port()
    command = [word.replace("{port}", str(port)) for word in command]
    log = folder / f"server-{port}.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=folder,  # no developer's .env here
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=sink,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, port, log)
    try:
        await wait_until_listening(server, start_timeout)
        yield server
    finally:
        await stop_group(process)


async def wait_until_listening(server: Server, within: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if server.process.returncode is not None:
            raise CaseFailure(
                f"the server exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.close()
            await writer.wait_closed()
            return
        await asyncio.sleep(0.1)
    raise CaseFailure(f"the server did not listen within {within:.0f} s:\n{server.log_tail()}")


async def stop_group(process: asyncio.subprocess.Process, grace: float = 40.0) -> None:
    """SIGTERM to the server's process group (gunicorn's workers too), SIGKILL after grace."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), wait)
            # The leader is gone; give the group's other members (workers) a moment.
            for _ in range(50):
                if not group_members(process.pid):
                    return
                await asyncio.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


# ---- CPU accounting ---------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_stats() -> Iterator[tuple[int, list[str]]]:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        yield int(entry.name), raw[raw.rfind(")") + 2 :].split()


def group_members(pgid: int) -> list[int]:
    return [pid for pid, fields in _proc_stats() if int(fields[2]) == pgid]


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU of every live process in the group (fields 14 and 15 of stat)."""
    ticks = sum(int(f[11]) + int(f[12]) for _, f in _proc_stats() if int(f[2]) == pgid)
    return ticks / CLOCK_TICKS


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot (busy: all but idle and iowait)."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in first[:8]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def busy_cores_since(ticks: tuple[int, int]) -> float:
    """All CPUs' busy time since `ticks` (`machine_ticks()` then), in cores."""
    busy_after, total_after = machine_ticks()
    share = (busy_after - ticks[0]) / max(1, total_after - ticks[1])
    return share * (os.cpu_count() or 1)


@dataclass(frozen=True)
class Usage:
    """Where a server's log, its processes' CPU and the machine's ticks stood when a phase
    began."""

    server: Server
    log_offset: int
    cpu: float
    ticks: tuple[int, int]

    @classmethod
    def start(cls, server: Server) -> Usage:
        return cls(server, server.log_size(), group_cpu_seconds(server.pid), machine_ticks())

    def server_cpu(self) -> float:
        """CPU seconds of the server's processes since the start."""
        return group_cpu_seconds(self.server.pid) - self.cpu

    def logged(self) -> list[str]:
        """The lines the server has logged since the start."""
        return self.server.log_since(self.log_offset).splitlines()


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---- replies ----------------------------------------------------------------------------


def reply_xml(body: str, safe: bool) -> str:
    """A reply's XML, decrypted in safe mode."""
    if not safe:
        return body
    envelope = ElementTree.fromstring(body)
    crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)
    return str(
        crypto.decrypt_message(
            body,
            envelope.findtext("MsgSignature"),
            envelope.findtext("TimeStamp"),
            envelope.findtext("Nonce"),
        )
    )


async def post_message(
    http: aiohttp.ClientSession, base: str, target: str, body: str
) -> tuple[int, str]:
    """POST a signed message (`target`: the path and its signed query); the response's
    status and text."""
    async with http.post(
        yarl.URL(base + target, encoded=True),
        data=body.encode(),
        headers={"Content-Type": "text/xml"},
    ) as response:
        return response.status, await response.text()


def reply_content(body: str, case: Case) -> str:
    """The text of a reply, decrypted in safe mode."""
    xml = reply_xml(body, case.safe)
    content = ElementTree.fromstring(xml).findtext("Content")
    if content is None:
        raise CaseFailure(f"a reply without <Content>: {xml[:200]}")
    return content


async def preflight(case: Case, traffic: Traffic, base: str) -> dict[str, str]:
    """One request of each kind (every unknown text), read and checked; returns the replies."""
    samples: list[tuple[str, str]] = [
        ("checkin", "学习 30"),
        ("today", "今日"),
        ("points", "积分"),
        *(("unknown", unknown) for unknown in UNKNOWN_TEXTS),
    ]
    replies: dict[str, str] = {}
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for kind, text_ in samples:
            openid = traffic.openids[0]
            if kind == "checkin":
                traffic.minutes[openid] += 30
            target, body = traffic.signed(openid, text_)
            status, answer = await post_message(http, base, target, body)
            if status != 200:
                raise CaseFailure(f"{text_!r} → HTTP {status}: {answer[:200]}")
            content = reply_content(answer, case)
            if case.markers[kind] not in content:
                raise CaseFailure(f"{text_!r} → unexpected reply {content[:200]!r}")
            replies.setdefault(text_, content)
    return replies


# ---- load generators --------------------------------------------------------------------

RESULT_LINE = re.compile(r"^QIYI_RESULT (\{.*\})$", re.MULTILINE)


async def wrk_load(
    wrk: str,
    url: str,
    pool_file: Path,
    threads: int,
    concurrency: int,
    seconds: int,
    expect: str,
    reject: str,
) -> Load:
    import json

    before = children_cpu_seconds()
    process = await asyncio.create_subprocess_exec(
        wrk,
        "-t",
        str(threads),
        "-c",
        str(concurrency),
        "-d",
        f"{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA_SCRIPT),
        url,
        "--",
        str(pool_file),
        str(threads),
        expect,
        reject,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), seconds + 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise CaseFailure("wrk did not finish in time") from None
    loadgen_cpu = children_cpu_seconds() - before
    found = RESULT_LINE.search(out.decode("utf-8", errors="replace"))
    if process.returncode != 0 or found is None:
        raise CaseFailure(f"wrk failed ({process.returncode}): {err.decode()[-500:]}")
    data = json.loads(found.group(1))
    errors = data["bad"] + data["connect"] + data["read"] + data["write"] + data["timeout"]
    return Load(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=errors,
        wraps=data["wraps"],
        sample=data["sample"],
        loadgen_cpu=loadgen_cpu,
    )


def percentile(ordered: Sequence[float], share: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def aiohttp_load(
    base: str,
    pool: list[tuple[str, str]],
    concurrency: int,
    seconds: int,
    expect: str,
    reject: str,
) -> Load:
    """The fallback load generator: `concurrency` keep-alive connections in this process."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors = 0
    sample = ""
    next_index = itertools.count()
    before = self_cpu_seconds()
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=10)
    started = loop.time()
    deadline = started + seconds

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal errors, sample
        while loop.time() < deadline:
            target, body = pool[next(next_index) % len(pool)]
            sent = time.perf_counter()
            try:
                status, answer = await post_message(http, base, target, body)
                latencies.append(time.perf_counter() - sent)
                good = status == 200 and expect in answer
                if reject and reject in answer:
                    good = False
                if not good:
                    errors += 1
                    sample = sample or f"{status} {answer[:160]}"
            except (aiohttp.ClientError, TimeoutError) as problem:
                errors += 1
                sample = sample or repr(problem)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    elapsed = loop.time() - started
    latencies.sort()
    done = len(latencies)
    return Load(
        requests=done,
        seconds=elapsed,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        errors=errors,
        wraps=max(0, (done + errors - 1) // len(pool)),
        sample=sample,
        loadgen_cpu=self_cpu_seconds() - before,
    )


# ---- one case ---------------------------------------------------------------------------


@dataclass
class Options:
    seconds: int
    warmup: int
    concurrency: int
    threads: int
    postgres: str
    markdown: bool
    cases: list[str]
    client: str
    werobot_server: str
    werobot_note: str
    profile: str | None
    start_timeout: float
    open_rates: list[float] = field(default_factory=list)  # open-loop phases, requests a second
    open_seconds: int = 10
    open_clients: int = 0  # 0: one client process per OPEN_RATE_PER_CLIENT a second
    open_max_in_flight: int = open_loop.MAX_IN_FLIGHT


def server_command(case: Case, options: Options, db_file: Path | None) -> list[str]:
    python = sys.executable
    if case.server == "bare":
        return [python, "-m", "bench.webhook_bare", "--port", "{port}"]
    if case.server == "floor":
        assert db_file is not None
        floor = ["-m", "bench.webhook_floor", "--db", str(db_file), "--token", TOKEN]
        return [python, *floor, "--port", "{port}"]
    if case.on_werobot:
        assert db_file is not None
        return [
            python,
            "-m",
            "bench.webhook_peer" if case.server == "peer" else "bench.webhook_werobot",
            "--db",
            str(db_file),
            "--port",
            "{port}",
            "--token",
            TOKEN,
            "--server",
            options.werobot_server,
            *(["--aes-key", AES_KEY, "--appid", APPID] if case.safe else []),
        ]
    return qiyi_command(case.processes if case.database == "postgresql" else None)


def qiyi_command(workers: int | None = None) -> list[str]:
    """`qiyi serve` on a loopback port (`{port}`); with gunicorn's `workers` when given."""
    qiyi = str(Path(sys.executable).parent / "qiyi")
    command = [qiyi, "serve", "--host", "127.0.0.1", "--port", "{port}"]
    if workers is not None:
        command += ["--workers", str(workers)]
    return command


def qiyi_environment(database_url: str, safe: bool) -> dict[str, str]:
    """The environment of `qiyi serve` on that database, with the settings of
    `qiyi_settings`."""
    extra = {
        "QIYI_DATABASE_URL": database_url,
        "QIYI_WECHAT_TOKEN": TOKEN,
        "QIYI_SCHEDULER": "off",
        "QIYI_TIMEZONE": "Asia/Shanghai",
    }
    if safe:
        extra.update(QIYI_WECHAT_AES_KEY=AES_KEY, QIYI_WECHAT_APPID=APPID)
    return server_environment(extra)


@contextlib.asynccontextmanager
async def prepared_backend(
    case: Case, options: Options, folder: Path, progress: Console
) -> AsyncIterator[tuple[list[str], dict[str, str]]]:
    """The case's database seeded, and the server's command and environment."""
    if case.server == "bare":
        yield server_command(case, options, None), server_environment({})
        return
    if case.server == "floor":
        db_file = folder / f"floor-{uuid.uuid4().hex[:8]}.sqlite3"
        try:
            yield server_command(case, options, db_file), server_environment({})
        finally:
            remove_sqlite_files(db_file)
        return
    if case.on_werobot:
        db_file = folder / f"{case.server}-{uuid.uuid4().hex[:8]}.sqlite3"
        try:
            seed_werobot(db_file, same_work=case.server == "peer")
            yield server_command(case, options, db_file), server_environment({})
        finally:
            remove_sqlite_files(db_file)
        return
    if case.database == "sqlite":
        db_file = folder / f"qiyi-{uuid.uuid4().hex[:8]}.db"
        url = f"sqlite+aiosqlite:///{db_file}"
        try:
            progress.log(f"{case.key}: seeding {MEMBERS:,} bound members (SQLite)")
            await seed_qiyi(url)
            yield server_command(case, options, None), qiyi_environment(url, case.safe)
        finally:
            remove_sqlite_files(db_file)
        return
    async with postgres_database(options.postgres) as url:
        progress.log(f"{case.key}: seeding {MEMBERS:,} bound members (PostgreSQL)")
        await seed_qiyi(url)
        yield server_command(case, options, None), qiyi_environment(url, case.safe)


def pool_size(rate_guess: float, seconds: int) -> int:
    return min(MAX_POOL, int(rate_guess * seconds * 1.5) + 2_000)


async def load_phase(
    case: Case,
    options: Options,
    traffic: Traffic,
    server: Server,
    folder: Path,
    seconds: int,
    count: int,
) -> Load:
    """Build and sign `count` requests now, then send them for `seconds`."""
    pool = traffic.pool(count)
    base = f"http://127.0.0.1:{server.port}"
    expect, reject = reply_checks(case)
    if options.client == "wrk":
        pool_file = folder / "requests.txt"
        write_pool(pool, pool_file)
        try:
            return await wrk_load(
                shutil.which("wrk") or "wrk",
                f"{base}/wechat",
                pool_file,
                options.threads,
                options.concurrency,
                seconds,
                expect,
                reject,
            )
        finally:
            pool_file.unlink(missing_ok=True)
    return await aiohttp_load(base, pool, options.concurrency, seconds, expect, reject)


def reply_checks(case: Case) -> tuple[str, str]:
    """What a good response holds, and what it must not hold ("" for nothing)."""
    expect = "<Encrypt>" if case.safe else "<Content>"
    reject = "" if case.safe or case.server != "qiyi" else QIYI_APOLOGY
    return expect, reject


def open_clients_for(rate: float, options: Options) -> int:
    """Client processes for an open-loop rate: --open-clients, or one per 500 a second."""
    return options.open_clients or max(1, math.ceil(rate / OPEN_RATE_PER_CLIENT))


async def open_phase(
    case: Case,
    options: Options,
    traffic: Traffic,
    server: Server,
    folder: Path,
    rate: float,
    progress: Console,
) -> OpenResult:
    """Send `rate` requests a second for --open-seconds whatever the replies
    (`bench.open_loop`); latency from each request's due time."""
    await asyncio.sleep(OPEN_PAUSE_S)
    pool = traffic.pool(max(1, round(rate * options.open_seconds)))
    expect, reject = reply_checks(case)
    clients = open_clients_for(rate, options)
    usage = Usage.start(server)
    load = await open_loop.run_clients(
        f"http://127.0.0.1:{server.port}",
        pool,
        rate,
        clients,
        folder,
        expect=expect,
        reject=reject,
        max_in_flight=options.open_max_in_flight,
    )
    busy_cores = busy_cores_since(usage.ticks)
    phase = OpenResult(load, server_cpu=usage.server_cpu(), busy_cores=busy_cores)
    phase.server_errors = apologies(case, usage.logged())
    p50, p99, most = (
        milliseconds(v) for v in (load.latency_ms(0.5), load.latency_ms(0.99), load.max_ms)
    )
    progress.log(
        f"{case.key}: open loop {rate:,.0f}/s: p50 {p50} ms, p99 {p99} ms, max {most} ms, "
        f"{phase.errors} errors, "
        f"{load.late} sent late, generator lag p99 {load.lag_ms(0.99):.1f} ms "
        f"({clients} client process{'es' if clients > 1 else ''})"
    )
    return phase


def apologies(case: Case, logged: list[str]) -> int:
    """Qiyi's apologies for an unexpected error in these lines of its log: in safe mode the
    load generator cannot see them in the encrypted replies (0 in other cases)."""
    if case.server != "qiyi" or not case.safe:
        return 0
    return sum(1 for line in logged if QIYI_FAILURE_LINE in line)


SETTLE_WITHIN_S = 120.0  # how long a server may take to go quiet after it listens
SETTLED_CORES = 0.05  # its processes' CPU over a second, below which it is quiet


async def settle(server: Server) -> tuple[float, bool]:
    """Wait until the server's processes are quiet before anything is measured: Qiyi starts
    a helper process (the month's standings) whose imports take seconds of CPU, minutes on
    a machine that is busy. The seconds waited, and whether it went quiet."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while loop.time() - started < SETTLE_WITHIN_S:
        before = group_cpu_seconds(server.pid)
        await asyncio.sleep(1.0)
        if group_cpu_seconds(server.pid) - before <= SETTLED_CORES:
            return loop.time() - started, True
    return loop.time() - started, False


async def measure(
    case: Case,
    options: Options,
    server: Server,
    folder: Path,
    progress: Console,
    profile_to: Path | None = None,
) -> tuple[Result, Profile | None]:
    traffic = Traffic(case, seed=CASE_KEYS.index(case.key))
    base = f"http://127.0.0.1:{server.port}"
    waited, quiet = await settle(server)
    progress.log(f"{case.key}: server {'quiet' if quiet else 'still busy'} after {waited:.0f} s")
    replies = await preflight(case, traffic, base)
    if case.key in ("a", "b", "d"):
        shown = "; ".join(f"{k} → {v.splitlines()[0][:40]}" for k, v in list(replies.items())[:3])
        progress.log(f"{case.key}: replies checked ({shown} …)")

    # Warm-up: imports, caches, connection pools, gunicorn's workers all up.
    guess = 3_000.0 if case.server == "bare" else 1_500.0
    warm = await load_phase(
        case, options, traffic, server, folder, options.warmup, pool_size(guess, options.warmup)
    )
    progress.log(f"{case.key}: warm-up {warm.rate:,.0f} req/s, {warm.errors} errors")

    count = pool_size(max(warm.rate, 100.0), options.seconds)
    usage = Usage.start(server)
    spy = (
        asyncio.create_task(
            webhook_profile.record(
                py_spy_path(), server.pid, max(1, options.seconds - 1), profile_to
            )
        )
        if profile_to is not None
        else None
    )
    load = await load_phase(case, options, traffic, server, folder, options.seconds, count)
    profile = await spy if spy is not None else None
    result = Result(case, load, busy_cores=busy_cores_since(usage.ticks))
    if not quiet:
        result.notes.append(f"the server was still busy {waited:.0f} s after it listened")
    result.server_cpu = usage.server_cpu()
    logged = usage.logged()
    result.server_errors = apologies(case, logged)
    trouble = [line for line in logged if TROUBLE_LINES.search(line)]
    if trouble:
        result.notes.append(f"server logged {len(trouble)} error lines, e.g. {trouble[0][:120]}")
    duplicates = sum(1 for line in logged if "duplicate message" in line)
    if duplicates:
        result.notes.append(f"{duplicates} duplicate MsgIds answered from the store")
    if load.wraps and case.server == "qiyi":
        result.notes.append(f"the request pool ran out {load.wraps}× (MsgIds repeated)")
    if load.errors and load.sample:
        flat = " ".join(load.sample.split())
        result.notes.append(f"first bad response: {flat[:160]}")
    if profile_to is None:  # the profiler's rerun measures the closed loop alone
        for rate in options.open_rates:
            phase = await open_phase(case, options, traffic, server, folder, rate, progress)
            result.open.append(phase)
            if phase.load.errors and phase.load.sample:
                flat = " ".join(phase.load.sample.split())
                result.notes.append(f"open loop {rate:g}/s, first bad response: {flat[:160]}")
    if traffic.converted:
        result.notes.append(f"{traffic.converted} check-ins sent as 今日 (day limit)")
    return result, profile


def py_spy_path() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise CaseFailure("py-spy is not installed (.venv/bin/pip install py-spy)")
    return found


async def run_case(
    case: Case, options: Options, folder: Path, progress: Console, profile_to: Path | None = None
) -> tuple[Result, Profile | None]:
    label = f"{case.key}: {case.label}"
    progress.log(f"{label}: starting")
    budget = options.seconds + options.warmup + options.start_timeout + 240
    budget += len(options.open_rates) * (options.open_seconds + open_loop.TIMEOUT_S + 60)
    async with (
        asyncio.timeout(budget),
        prepared_backend(case, options, folder, progress) as (command, env),
        run_server(command, env, folder, options.start_timeout) as server,
    ):
        result, profile = await measure(case, options, server, folder, progress, profile_to)
        if case.on_werobot:
            result.notes.append(f"WeRoBot server: {options.werobot_server}")
    load = result.load
    assert load is not None
    progress.log(
        f"{label}: {load.rate:,.0f} req/s, p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms, "
        f"{result.errors} errors, server CPU {result.server_cpu / load.seconds:.2f} cores"
    )
    return result, profile


# ---- the run ----------------------------------------------------------------------------


def werobot_available() -> str:
    """'' when WeRoBot imports here, else why not."""
    if importlib.util.find_spec("werobot") is None:
        return "WeRoBot is not installed (.venv/bin/pip install werobot)"
    try:
        import werobot  # noqa: F401
    except Exception as problem:  # a broken install: report it, measure the rest
        return f"WeRoBot does not import on Python {platform.python_version()}: {problem!r}"
    return ""


def pick_werobot_server(requested: str) -> tuple[str, str]:
    """The server adapter to use and a note when it is not the one asked for."""
    candidates = [requested] if requested != "fastest" else list(WEROBOT_SERVERS)
    for name in candidates:
        module = {"wsgiref": "wsgiref"}.get(name, name)
        if importlib.util.find_spec(module) is not None:
            note = "" if name == candidates[0] else f"{candidates[0]} not installed"
            return name, note
    return "wsgiref", f"none of {', '.join(candidates)} installed"


async def background_cores(seconds: float = 2.0) -> float:
    """How many cores the machine keeps busy with nothing of ours running."""
    ticks = machine_ticks()
    await asyncio.sleep(seconds)
    return busy_cores_since(ticks)


@dataclass
class Run:
    results: list[Result]
    profile: Profile | None
    pg_version: str
    idle_busy: float


async def run(options: Options, progress: Console) -> Run:
    results: list[Result] = []
    pg_version = ""
    idle_busy = await background_cores()
    selected = [case for case in CASES if case.key in options.cases]
    if any(case.database == "postgresql" for case in selected):
        try:
            pg_version = await postgres_version(options.postgres)
        except Exception as problem:
            reason = f"PostgreSQL unreachable at {hidden(options.postgres)}: {problem!r}"[:200]
            progress.log(f"[yellow]skipping (c)[/]: {reason}")
            for case in selected:
                if case.database == "postgresql":
                    results.append(Result(case, skipped=reason))
            selected = [case for case in selected if case.database != "postgresql"]
    werobot_problem = werobot_available() if any(c.on_werobot for c in selected) else ""
    if werobot_problem:
        progress.log(f"[yellow]skipping (d)[/]: {werobot_problem}")
        for case in selected:
            if case.on_werobot:
                results.append(Result(case, skipped=werobot_problem))
        selected = [case for case in selected if not case.on_werobot]

    profile: Profile | None = None
    with tempfile.TemporaryDirectory(prefix="qiyi-webhook-bench-") as name:
        folder = Path(name)
        for case in selected:
            try:
                result, _ = await run_case(case, options, folder, progress)
            except (CaseFailure, TimeoutError) as problem:
                reason = str(problem) or "timed out"
                progress.log(f"[red]{case.key} failed[/]: {reason}")
                lines = [line.strip() for line in reason.splitlines() if line.strip()]
                brief = lines[0] + (f" … {lines[-1]}" if len(lines) > 1 else "")
                result = Result(case, notes=[f"FAILED: {brief[:300]}"])
            results.append(result)
        if options.profile:
            case = next(case for case in CASES if case.key == options.profile)
            progress.log(f"{case.key}: once more under py-spy (not in the table)")
            try:
                _, profile = await run_case(case, options, folder, progress, folder / "spy.txt")
            except (CaseFailure, ProfileError, TimeoutError) as problem:
                progress.log(f"[red]profile failed[/]: {problem}")
    order = {key: i for i, key in enumerate(CASE_KEYS)}
    results.sort(key=lambda r: order[r.case.key])
    return Run(results, profile, pg_version, idle_busy)


# ---- the report -------------------------------------------------------------------------

COLUMNS = (
    "case",
    "processes",
    "req/s",
    "p50 ms",
    "p99 ms",
    "errors",
    "requests",
    "server CPU",
    "load gen CPU",
    "other CPU",
)


def errors_cell(errors: int, sent: int, failed: bool) -> str:
    """The errors and their share of the requests, and FAILED past the limit."""
    cell = f"{errors} ({errors / max(1, sent):.1%})"
    return cell + " FAILED" if failed else cell


def rows(results: list[Result]) -> list[list[str]]:
    table: list[list[str]] = []
    for r in results:
        load = r.load
        if load is None:
            status = f"skipped: {r.skipped}" if r.skipped else "FAILED"
            table.append([r.case.label, str(r.case.processes), status] + ["—"] * 7)
            continue
        seconds = max(load.seconds, 1e-9)
        errors = errors_cell(r.errors, load.requests, r.failed)
        table.append(
            [
                r.case.label,
                str(r.case.processes),
                f"{load.rate:,.0f}",
                f"{load.p50_ms:.1f}",
                f"{load.p99_ms:.1f}",
                errors,
                f"{load.requests:,}",
                f"{r.server_cpu / seconds:.2f}",
                f"{load.loadgen_cpu / seconds:.2f}",
                f"{max(0.0, r.busy_cores - (r.server_cpu + load.loadgen_cpu) / seconds):.2f}",
            ]
        )
    return table


OPEN_COLUMNS = (
    "case",
    "processes",
    "rate/s",
    "replies/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "max ms",
    "errors",
    "sent late",
    "gen. lag p99 ms",
    "gen. lag max ms",
    "clients",
    "server CPU",
    "load gen CPU",
)


def milliseconds(value: float) -> str:
    """A latency for the table: "no reply" past the requests answered (`OpenLoad.latencies`)."""
    return "no reply" if math.isinf(value) else f"{value:.1f}"


def open_rows(results: list[Result]) -> list[list[str]]:
    """The open-loop phases: latency from each request's due time to its full reply."""
    table: list[list[str]] = []
    for r in results:
        for phase in r.open:
            load = phase.load
            seconds = max(load.seconds, 1e-9)
            errors = errors_cell(phase.errors, load.scheduled, phase.failed)
            table.append(
                [
                    r.case.label,
                    str(r.case.processes),
                    f"{load.rate:,.0f}",
                    f"{load.achieved_rate:,.0f}",
                    milliseconds(load.latency_ms(0.50)),
                    milliseconds(load.latency_ms(0.95)),
                    milliseconds(load.latency_ms(0.99)),
                    milliseconds(load.max_ms),
                    errors,
                    f"{load.late:,} ({load.late / max(1, load.scheduled):.1%})",
                    f"{load.lag_ms(0.99):.1f}",
                    f"{max(load.lags, default=0.0) * 1000:.1f}",
                    str(load.clients),
                    f"{phase.server_cpu / seconds:.2f}",
                    f"{load.cpu_seconds / seconds:.2f}",
                ]
            )
    return table


def open_verdicts(results: list[Result]) -> list[str]:
    lines: list[str] = []
    for r in results:
        if r.case.server != "qiyi":
            continue
        for phase in r.open:
            load = phase.load
            head = f"open loop, {r.case.label} at {load.rate:,.0f}/s"
            if phase.failed:
                lines.append(f"{head}: {phase.errors} errors, FAILED")
                continue
            p99 = load.latency_ms(0.99)
            if load.rate == OPEN_GOAL_RATE:
                ok = p99 <= OPEN_P99_GOAL_MS
                verdict = f"(goal ≤ {OPEN_P99_GOAL_MS:g} ms): {'met' if ok else 'MISSED'}"
            else:
                verdict = "(reported)"
            lines.append(f"{head}: p99 {milliseconds(p99)} ms {verdict}")
    if any(r.open for r in results):
        lines.append(
            f"open loop: latency runs from each request's due time (start + i / rate) to its "
            f"full reply, so the queue a slow server builds counts; a request without a reply "
            f"(timed out after {open_loop.TIMEOUT_S:g} s, refused) counts as slower than any "
            f"('no reply'); 'sent late' = started more than {open_loop.LATE_S * 1000:g} ms "
            f"after its due time by the load generator (its lag is inside every latency above)"
        )
    return lines


def _find(results: list[Result], key: str) -> Result | None:
    found = next((r for r in results if r.case.key == key), None)
    return found if found is not None and found.load is not None and not found.failed else None


def verdicts(results: list[Result]) -> list[str]:
    lines: list[str] = []
    a, b, d = _find(results, "a"), _find(results, "b"), _find(results, "d")
    if a and b and a.load and b.load:
        share = b.load.rate / a.load.rate
        ok = share >= CEILING_SHARE_GOAL
        lines.append(
            f"(b)/(a) = {b.load.rate:,.0f} / {a.load.rate:,.0f} req/s = {share:.1%} "
            f"(goal ≥ {CEILING_SHARE_GOAL:.0%}): {'met' if ok else 'MISSED'}"
        )
    else:
        lines.append("(b)/(a): not judged ((a) or (b) missing or failed)")
    floor = _find(results, "a-floor")
    if a and floor and a.load and floor.load:
        share = floor.load.rate / a.load.rate
        lines.append(
            f"for reference, (a′)/(a) = {floor.load.rate:,.0f} / {a.load.rate:,.0f} req/s = "
            f"{share:.1%}: parsing with wechatpy and one SQLite write, nothing else"
        )
    if b and d and b.load and d.load:
        factor = b.load.rate / d.load.rate
        ok = factor >= WEROBOT_FACTOR_GOAL
        lines.append(
            f"(b)/(d) = {b.load.rate:,.0f} / {d.load.rate:,.0f} req/s = ×{factor:.2f} "
            f"(goal ≥ ×{WEROBOT_FACTOR_GOAL:g}): {'met' if ok else 'MISSED'}"
        )
    else:
        lines.append("(b)/(d): not judged ((b) or (d) missing or failed)")
    if b and floor and b.load and floor.load:
        share = b.load.rate / floor.load.rate
        ok = share >= FLOOR_SHARE_GOAL
        lines.append(
            f"(b)/(a′) = {b.load.rate:,.0f} / {floor.load.rate:,.0f} req/s = {share:.1%} "
            f"(goal ≥ {FLOOR_SHARE_GOAL:.0%}): {'met' if ok else 'MISSED'}"
        )
    same = _find(results, "d-same")
    if b and same and b.load and same.load:
        factor = b.load.rate / same.load.rate
        lines.append(
            f"(b)/(d′) = {b.load.rate:,.0f} / {same.load.rate:,.0f} req/s = ×{factor:.2f}: "
            f"Qiyi against a hand-written bot doing the same check-in work"
        )
    b_safe, d_safe = _find(results, "b-safe"), _find(results, "d-safe")
    if b_safe and d_safe and b_safe.load and d_safe.load:
        factor = b_safe.load.rate / d_safe.load.rate
        lines.append(f"safe mode, for reference: (b)/(d) = ×{factor:.2f}")
    for r in results:
        if r.case.server != "qiyi":
            continue
        if r.load is None or r.failed:
            lines.append(f"p99 of {r.case.label}: not judged (skipped or failed)")
            continue
        ok = r.load.p99_ms <= P99_GOAL_MS
        lines.append(
            f"p99 of {r.case.label} at {r.load.rate:,.0f} req/s: {r.load.p99_ms:.1f} ms "
            f"(goal ≤ {P99_GOAL_MS:g} ms): {'met' if ok else 'MISSED'}"
        )
    return lines


def hidden(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable URL>"


def command_line(options: Options) -> str:
    words = list(sys.orig_argv)
    if options.postgres:
        words = [word.replace(options.postgres, hidden(options.postgres)) for word in words]
    return shlex.join(words)


def version_of(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def wrk_version() -> str:
    import subprocess

    wrk = shutil.which("wrk")
    if not wrk:
        return "not installed"
    done = subprocess.run([wrk, "--version"], capture_output=True, text=True, timeout=10)
    return (done.stdout + done.stderr).splitlines()[0].strip()


def environment_lines(options: Options, pg_version: str, idle_busy: float) -> list[str]:
    cpus = os.cpu_count() or 0
    werobot_note = f", {options.werobot_note}" if options.werobot_note else ""
    client = (
        f"wrk ({wrk_version()}), {options.threads} thread(s)"
        if options.client == "wrk"
        else "aiohttp client in the benchmark's process"
    )
    return [
        f"Python {platform.python_version()} ({platform.python_implementation()}) on "
        f"{platform.system()} {platform.machine()}, {cpus} CPUs",
        f"aiohttp {aiohttp.__version__}, SQLite {sqlite3.sqlite_version}, "
        f"PostgreSQL {pg_version or 'not used'}, WeRoBot {version_of('werobot')} "
        f"(server: {options.werobot_server}{werobot_note}), "
        f"bottle {version_of('bottle')}, bjoern {version_of('bjoern')}",
        f"load: {client}, {options.concurrency} connections, {options.warmup} s warm-up then "
        f"{options.seconds} s per case; {MEMBERS:,} bound members; mix 50% 学习 N (1–60), "
        f"20% 今日, 20% 积分, 10% unknown text; every request signed, its own MsgId",
        *(
            [
                f"open loop: then {options.open_seconds} s at each of "
                f"{', '.join(f'{rate:g}' for rate in options.open_rates)} requests a second, "
                f"on a fixed schedule from Python client processes (bench/open_loop.py; "
                f"{options.open_clients or f'one per {OPEN_RATE_PER_CLIENT:g}/s'}), at most "
                f"{options.open_max_in_flight:,} in flight per process"
            ]
            if options.open_rates
            else []
        ),
        f"the load generator, the server and PostgreSQL share these {cpus} CPUs; CPU columns "
        f"in cores over the measured seconds: 'server' = the server's processes, 'load gen' "
        f"= wrk or the client, 'other' = the rest of the machine (PostgreSQL's backends, and "
        f"whatever else runs: {idle_busy:.2f} cores were busy before the first case)",
        f"command: {command_line(options)}",
    ]


def notes_lines(results: list[Result]) -> list[str]:
    return [f"{r.case.key}: {note}" for r in results for note in r.notes]


def print_markdown(results: list[Result], header: list[str], footer: list[str]) -> None:
    opened = open_rows(results)
    closed_footer = [] if opened else footer
    tables.print_markdown(COLUMNS, rows(results), header, closed_footer, text_columns=1)
    if opened:
        print("Open loop (a fixed rate whatever the replies):")
        print()
        tables.print_markdown(OPEN_COLUMNS, opened, [], footer, text_columns=1)


def print_rich(
    console: Console, results: list[Result], header: list[str], footer: list[str]
) -> None:
    for line in header:
        console.print(line, highlight=False, soft_wrap=True, markup=False)
    table = Table(title="WeChat webhook under load (POST /wechat, 127.0.0.1)")
    for i, column in enumerate(COLUMNS):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows(results):
        table.add_row(*row)
    console.print(table)
    opened = open_rows(results)
    if opened:
        table = Table(title="Open loop: a fixed rate whatever the replies")
        for i, column in enumerate(OPEN_COLUMNS):
            table.add_column(column, justify="left" if i == 0 else "right")
        for row in opened:
            table.add_row(*row)
        console.print(table)
    for line in footer:
        console.print(line, highlight=False, soft_wrap=True, markup=False)


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.webhook",
        description="Load benchmark of the WeChat webhook against a bare aiohttp handler "
        "and a WeRoBot bot, on 127.0.0.1.",
    )
    parser.add_argument("--seconds", type=int, default=10, help="measured seconds per case")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds per case")
    parser.add_argument("--concurrency", type=int, default=32, help="connections (default 32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/test",
        help="server for (c); a throwaway database is created there and dropped",
    )
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument(
        "--cases",
        default=",".join(CASE_KEYS),
        help=f"comma-separated subset of {','.join(CASE_KEYS)} (default: all)",
    )
    parser.add_argument(
        "--client",
        choices=("auto", "wrk", "aiohttp"),
        default="auto",
        help="load generator: wrk when installed (auto), or the aiohttp client",
    )
    parser.add_argument(
        "--werobot-server",
        default="fastest",
        help=f"bottle server adapter for (d); 'fastest': first installed of "
        f"{', '.join(WEROBOT_SERVERS)}",
    )
    parser.add_argument(
        "--profile",
        choices=CASE_KEYS,
        help="run this case once more with py-spy attached and print its hot spots",
    )
    parser.add_argument(
        "--open-rate",
        metavar="RATES",
        default="",
        help="after each case's closed loop, an open-loop phase at each of these rates "
        "(requests a second, comma-separated, e.g. 300,1000): sent on a fixed schedule "
        "whatever the replies, latency from each request's due time",
    )
    parser.add_argument(
        "--open-seconds", type=int, default=10, help="seconds of each open-loop phase"
    )
    parser.add_argument(
        "--open-clients",
        type=int,
        default=0,
        help=f"load generator processes of an open-loop phase (default: one per "
        f"{OPEN_RATE_PER_CLIENT:,.0f} requests a second)",
    )
    parser.add_argument(
        "--open-max-in-flight",
        type=int,
        default=open_loop.MAX_IN_FLIGHT,
        help=f"requests in flight at most per client process (default "
        f"{open_loop.MAX_IN_FLIGHT:,}; a request that waits for a slot counts as late)",
    )
    parser.add_argument("--start-timeout", type=float, default=60.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        open_rates = [float(rate) for rate in args.open_rate.split(",") if rate.strip()]
    except ValueError:
        parser.error("--open-rate: comma-separated numbers, e.g. 300,1000")
    if any(not 1 <= rate <= 20_000 for rate in open_rates):
        parser.error("--open-rate: each rate between 1 and 20000 a second")
    if not 1 <= args.open_seconds <= 600 or not 0 <= args.open_clients <= 16:
        parser.error("--open-seconds between 1 and 600, --open-clients between 0 and 16")
    if not 1 <= args.open_max_in_flight <= 10_000:
        parser.error("--open-max-in-flight between 1 and 10000")
    cases = [key.strip() for key in args.cases.split(",") if key.strip()]
    unknown = [key for key in cases if key not in CASE_KEYS]
    if unknown:
        parser.error(f"--cases: unknown {', '.join(unknown)}")
    if not 1 <= args.seconds <= 600 or not 1 <= args.warmup <= 120:
        parser.error("--seconds between 1 and 600, --warmup between 1 and 120")
    if not 1 <= args.concurrency <= 1_000 or not 1 <= args.threads <= args.concurrency:
        parser.error("--concurrency between 1 and 1000; --threads between 1 and --concurrency")
    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "aiohttp"
    elif client == "wrk" and not shutil.which("wrk"):
        parser.error("--client wrk: wrk is not installed (apt-get install wrk)")
    server, note = pick_werobot_server(args.werobot_server)
    return Options(
        seconds=args.seconds,
        warmup=args.warmup,
        concurrency=args.concurrency,
        threads=args.threads,
        postgres=args.postgres,
        markdown=args.markdown,
        cases=cases,
        client=client,
        werobot_server=server,
        werobot_note=note,
        profile=args.profile,
        start_timeout=args.start_timeout,
        open_rates=open_rates,
        open_seconds=args.open_seconds,
        open_clients=args.open_clients,
        open_max_in_flight=args.open_max_in_flight,
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    progress = Console(stderr=True, log_path=False)
    done = asyncio.run(run(options, progress))
    results = done.results
    header = environment_lines(options, done.pg_version, done.idle_busy)
    footer = verdicts(results) + open_verdicts(results) + notes_lines(results)
    if done.profile is not None and options.profile:
        footer += webhook_profile.report_lines(done.profile, options.profile)
    if options.markdown:
        print_markdown(results, header, footer)
    else:
        print_rich(tables.terminal(width=180), results, header, footer)
    measured = [r for r in results if not r.skipped]
    return 1 if any(r.failed for r in measured) else 0


if __name__ == "__main__":
    sys.exit(main())
