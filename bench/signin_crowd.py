"""The crowd of bench/signins.py: members bound to WeChat, one activity open for sign-in, the
`签到 <code>` messages they send (open loop at a fixed rate, or a burst over a fixed number of
connections), and the check afterwards that every sign-in was kept.

The server under test is reached by its base URL only, so the same functions drive a `qiyi
serve` process (the benchmark) and an app on aiohttp's test server (tests/test_bench_signins.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlencode

import aiohttp
from defusedxml import ElementTree
from sqlalchemy import func, text, update
from sqlmodel import col, select

from bench.webhook import post_message, reply_xml
from bench.webhook import qiyi_settings as bench_settings
from bot import activities, activity_codes
from bot.channels.wechat_sample import signed_request
from bot.clock import Clock, unix_seconds
from bot.messages import Sender
from data import audit, members, migrate
from data.db import create_engine, run, session_factory, transaction
from data.members import RosterRow
from data.models import (
    ActivityKind,
    Attendance,
    AttendanceState,
    Member,
    OutboxItem,
    OutboxState,
    Role,
    StudyEntry,
)

ZONE = "Asia/Shanghai"  # the server's (`qiyi_settings`)

BRANCHES = 40
ORGANISER = "900000"  # the admin who publishes the training and shows the code
TITLE = "全厂动员大会暨安全生产培训"
PLACE = "厂部礼堂"
LENGTH_MINUTES = 120  # a 培训: attended, it is the day's study (the daily goal reached)
STARTS_IN = dt.timedelta(minutes=10)  # the sign-in window opened 20 minutes ago
TIMEOUT_S = 10.0
# What every reply must say: signed in, the training's length credited as study.
SUCCESS = ("签到成功", f"已记入今天学习 {LENGTH_MINUTES} 分钟")


def openid_of(index: int) -> str:
    """A 28-character openid, like the platform's."""
    return f"oQiyiSignIn{index:017d}"


def roster(count: int) -> list[RosterRow]:
    """`count` members in 40 branches, and the admin who organises."""
    rows = [
        RosterRow(str(100_000 + i), f"职工{i:04d}", f"第{i % BRANCHES + 1}党支部", Role.MEMBER)
        for i in range(count)
    ]
    return [*rows, RosterRow(ORGANISER, "厂党委", "机关党支部", Role.ADMIN)]


# ---- seeding ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    activity_id: int
    secret: str  # what the organiser's screen shows codes of
    starts_at: dt.datetime
    expected: int  # members the activity expects (the organiser too)


async def seed(database_url: str, count: int, clock: Clock) -> Seeded:
    """Migrate, import `count` members, bind each to its openid, and publish a 培训 for
    everyone starting `STARTS_IN` from `clock`'s now — through the product's own functions.
    Its notice and reminder are marked sent: they went out before the meeting, and a
    dispatcher working through them must not share the server with the sign-ins."""
    engine = create_engine(database_url)
    try:
        await migrate.upgrade(engine)
        sessions = session_factory(engine)
        now = clock.now()
        people = roster(count)
        async with transaction(sessions) as session:
            await members.upsert_roster(session, people, now)
        async with transaction(sessions) as session:
            found = {m.roster_id: m for m in await session.exec(select(Member))}
            for index, row in enumerate(people[:count]):
                sender = Sender("wechat", openid_of(index))
                await members.bind(session, sender, found[row.member_id], now)
            organiser = found[ORGANISER]
            draft = activities.Draft(
                kind=ActivityKind.TRAINING,
                starts_at=now + STARTS_IN,
                minutes=LENGTH_MINUTES,
                place=PLACE,
                title=TITLE,
                everyone=True,
            )
            actor = audit.Actor.of_member(organiser, audit.Door.CHAT, "wechat")
            settings = bench_settings(database_url)
            activity = await activities.publish(session, draft, organiser, actor, settings, clock)
            sent = update(OutboxItem).values(state=OutboxState.SENT.value, done_at=now)
            await run(session, sent)
            assert activity.id is not None
            seeded = Seeded(activity.id, activity.secret, activity.starts_at, len(people))
        if engine.dialect.name == "postgresql":
            async with engine.begin() as connection:
                await connection.execute(text("ANALYZE"))
        return seeded
    finally:
        await engine.dispose()


# ---- the messages -------------------------------------------------------------------------


class SignIns:
    """Each member's `签到 <code>`, signed when it is sent, with the code of that moment
    computed from the activity's secret (as a member reads it off the organiser's screen)."""

    def __init__(self, seeded: Seeded, clock: Clock, *, safe: bool = False) -> None:
        self.seeded = seeded
        self.clock = clock
        self.safe = safe
        self.settings = bench_settings("sqlite://", safe=safe)
        self.msg_ids = itertools.count(8_000_000_000_000_000_000 + secrets.randbelow(10**15))
        self.codes: Counter[str] = Counter()  # the codes sent: a run may cross a rotation

    def request(self, member: int) -> tuple[str, str]:
        """The path with its signed query, and the body (encrypted in safe mode)."""
        code = activity_codes.current_code(self.seeded.secret, self.clock.now())
        self.codes[code] += 1
        return self.signed(member, f"签到 {code}")

    def signed(self, member: int, words: str) -> tuple[str, str]:
        now = unix_seconds(self.clock)
        query, body = signed_request(
            self.settings, openid_of(member), words, now, next(self.msg_ids)
        )
        return f"/wechat?{urlencode(query)}", body

    def content(self, body: str) -> str:
        """The reply's text (decrypted in safe mode); '' when there is none."""
        return ElementTree.fromstring(reply_xml(body, self.safe)).findtext("Content") or ""


# ---- the load -----------------------------------------------------------------------------


@dataclass
class Load:
    """What one run of sign-ins measured, client side."""

    sent: int = 0
    seconds: float = 0.0  # from the first request sent to the last reply read
    latencies: list[float] = field(default_factory=list)  # seconds, to the full reply
    errors: int = 0
    sample: str = ""  # the first bad reply or failure
    late: float = 0.0  # open loop: the most a request left after its planned moment (s)

    def fail(self, what: str) -> None:
        self.errors += 1
        self.sample = self.sample or " ".join(what.split())[:200]

    def percentile_ms(self, share: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] * 1000

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0


async def _post(
    http: aiohttp.ClientSession, base: str, signins: SignIns, member: int, into: Load
) -> None:
    target, body = signins.request(member)
    into.sent += 1
    sent = time.perf_counter()
    try:
        status, answer = await post_message(http, base, target, body)
    except (aiohttp.ClientError, TimeoutError) as problem:
        into.latencies.append(time.perf_counter() - sent)  # at least this long: counted
        into.fail(f"member {member}: {problem!r}")
        return
    into.latencies.append(time.perf_counter() - sent)
    if status != 200:
        into.fail(f"member {member}: HTTP {status} {answer[:120]}")
        return
    try:
        content = signins.content(answer)
    except Exception as problem:  # an unreadable reply is a bad reply, whatever broke
        into.fail(f"member {member}: unreadable reply {problem!r} {answer[:120]}")
        return
    if not all(words in content for words in SUCCESS):
        into.fail(f"member {member}: {content}")


def _session(connections: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=connections)
    return aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)
    )


async def steady(base: str, signins: SignIns, count: int, seconds: float) -> Load:
    """Open loop: member i's sign-in leaves at i × seconds / count after the start, whether
    or not the earlier ones were answered, so a slow server shows as latency."""
    loop = asyncio.get_running_loop()
    load = Load()
    interval = seconds / count
    async with _session(0) as http:
        started = loop.time()
        first = time.perf_counter()
        sending: list[asyncio.Task[None]] = []
        for member in range(count):
            due = started + member * interval
            await asyncio.sleep(max(0.0, due - loop.time()))
            load.late = max(load.late, loop.time() - due)
            sending.append(asyncio.create_task(_post(http, base, signins, member, load)))
        await asyncio.gather(*sending)
        load.seconds = time.perf_counter() - first
    return load


async def burst(base: str, signins: SignIns, count: int, connections: int) -> Load:
    """Closed loop: `connections` clients each send the next member's sign-in as soon as
    their previous one is answered, until all `count` have signed in."""
    load = Load()
    members_left = iter(range(count))

    async with _session(connections) as http:

        async def client() -> None:
            for member in members_left:
                await _post(http, base, signins, member, load)

        first = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(connections)))
        load.seconds = time.perf_counter() - first
    return load


async def warm_up(base: str, signins: SignIns, count: int, connections: int) -> int:
    """`活动` (my upcoming activities) from the first `count` members, not
    measured: the server's imports, templates and connection pools are ready before the
    crowd arrives. Returns how many were answered 200."""
    answered = 0
    members_left = iter(range(count))
    async with _session(connections) as http:

        async def client() -> None:
            nonlocal answered
            for member in members_left:
                target, body = signins.signed(member, "活动")
                status, _ = await post_message(http, base, target, body)
                answered += status == 200

        await asyncio.gather(*(client() for _ in range(connections)))
    return answered


# ---- the check ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Kept:
    """What the database holds for the activity after the run."""

    present: int
    present_by_code: int  # signed in by themselves, not by the organiser
    study_entries: int
    study_minutes: int

    def lost(self, count: int) -> list[str]:
        """What is missing or more than `count` sign-ins should have left."""
        expected = {
            "present attendances": (self.present, count),
            "signed in by code": (self.present_by_code, count),
            "study entries": (self.study_entries, count),
            "study minutes": (self.study_minutes, count * LENGTH_MINUTES),
        }
        return [
            f"{name}: {found:,} (expected {want:,})"
            for name, (found, want) in expected.items()
            if found != want
        ]


async def kept(database_url: str, activity_id: int) -> Kept:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            present = select(func.count(), func.count(col(Attendance.signed_in_by))).where(
                Attendance.activity_id == activity_id,
                Attendance.state == AttendanceState.PRESENT.value,
            )
            total, by_organiser = (await session.exec(present)).one()
            entries = select(func.count(), func.coalesce(func.sum(StudyEntry.minutes), 0)).where(
                StudyEntry.activity_id == activity_id
            )
            count, minutes = (await session.exec(entries)).one()
    finally:
        await engine.dispose()
    return Kept(int(total), int(total) - int(by_organiser), int(count), int(minutes))
