"""The month's standings so far — for `排行` and `我的月报` — computed outside the server's
process and kept for a few minutes.

Scoring the month means aggregating every member's month (`month_report`): 145 ms at 1,000
members, seconds at 10,000. Done per message on the loop's thread, as it was, every other
member's check-in and `/healthz` waited for it. Here it runs at most once per `max_age`
(single flight: one computation at a time; whoever asks meanwhile waits for that one) in a
helper process, with an event loop and a read-only engine of its own (`data.db.
create_reader`): the SQL, the conversion of its rows and the scoring all happen there, and
its transactions take no write lock, so the message path's writers never wait for them. A
thread would not do: the computation's Python holds the GIL for seconds at 10,000 members,
and every message's every step would wait for it (see `in_a_thread`). The result carries
the moment it was computed, which the replies show ("截至 10:35").

Each server process keeps its own standings and helper (`qiyi serve --workers N`: each
worker computes its own, at most once per `max_age`); they are read-only, so nothing needs
sharing.
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import functools
import logging
import multiprocessing as mp
import os
from array import array
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import Clock, today
from bot.reports.bulletins import Context, MonthReport, month_report
from bot.reports.periods import PeriodKind, ReportPeriod
from bot.reports.scoring import BranchScore, shared_ranks
from data.db import Sessions, create_reader, session_factory

log = logging.getLogger(__name__)

TOP_MEMBERS = 5  # per branch, as `排行` shows them
DEFAULT_MAX_AGE = dt.timedelta(minutes=5)
# How long a message waits for a computation before it is answered with older standings
# (or asked to try again): well inside WeChat's 5 seconds.
DEFAULT_WAIT_S = 3.0


@dataclass(frozen=True)
class RankedMember:
    rank: int  # within the branch; equal points share it
    name: str
    points: int


@dataclass(frozen=True)
class Place:
    """A member's place in their branch by this month's points."""

    rank: int  # equal points share it: 1, 1, 3
    of: int  # the branch's members
    points: int


@dataclass(frozen=True)
class MonthStandings:
    """The month from its first day through `day`, as computed at `as_of`.

    The members' places are kept as four arrays of integers sorted by member id: they come
    back from the helper process as a few buffers (0.1 ms to read at 10,000 members, where
    as many objects took 67 ms of the loop's time) and are looked up by bisection."""

    day: dt.date
    as_of: dt.datetime
    branches: list[BranchScore]  # ranked, best first; unranked (no members) last
    top: dict[int, list[RankedMember]]  # branch id → its best members with points
    member_ids: array[int]  # sorted
    ranks: array[int]  # rank in the branch; equal points share it: 1, 1, 3
    branch_sizes: array[int]
    points: array[int]

    def branch(self, branch_id: int) -> BranchScore | None:
        return next((b for b in self.branches if b.branch_id == branch_id), None)

    def place(self, member_id: int) -> Place | None:
        """The member's place in their branch; None for a member the standings predate."""
        index = bisect.bisect_left(self.member_ids, member_id)
        if index == len(self.member_ids) or self.member_ids[index] != member_id:
            return None
        return Place(self.ranks[index], self.branch_sizes[index], self.points[index])


def standings_of(
    report: MonthReport, day: dt.date, as_of: dt.datetime, top_size: int = TOP_MEMBERS
) -> MonthStandings:
    """What `排行` and `我的月报` read of the month's report, per branch."""
    by_branch: dict[int, list[tuple[int, str, int, str]]] = {}
    for person in report.members:
        row = (person.member_id, person.name, person.points, person.roster_id)
        by_branch.setdefault(person.branch_id, []).append(row)
    top: dict[int, list[RankedMember]] = {}
    places: list[tuple[int, int, int, int]] = []
    for branch_id, people in by_branch.items():
        people.sort(key=lambda p: (-p[2], p[3]))
        ranks = shared_ranks([points for _, _, points, _ in people])
        for (member_id, _, points, _), rank in zip(people, ranks, strict=True):
            places.append((member_id, rank, len(people), points))
        top[branch_id] = [
            RankedMember(rank, name, points)
            for (_, name, points, _), rank in zip(people, ranks, strict=True)
            if points > 0
        ][:top_size]
    places.sort()
    columns = [array("q", column) for column in zip(*places, strict=True)] or [array("q")] * 4
    return MonthStandings(day, as_of, report.branches, top, *columns)


Compute = Callable[[dt.date, dt.datetime], Awaitable[MonthStandings]]
T = TypeVar("T")


async def _compute(
    sessions: Sessions, context: Context, day: dt.date, as_of: dt.datetime
) -> MonthStandings:
    month = ReportPeriod(PeriodKind.MONTH, day.year, day.month)
    async with sessions() as session:  # a plain session: reading needs no writer's turn
        report = await month_report(session, month, context, until=day)
    return standings_of(report, day, as_of)


def compute_standings(
    url: str, context: Context, day: dt.date, as_of: dt.datetime
) -> MonthStandings:
    """The computation as one blocking call, for another process or thread: an event loop
    and a read-only engine of its own, both gone when it returns."""

    async def compute() -> MonthStandings:
        engine = create_reader(url)
        try:
            return await _compute(session_factory(engine), context, day, as_of)
        finally:
            await engine.dispose()

    return asyncio.run(compute())


def in_a_thread(url: str, context: Context) -> Compute:
    """`compute_standings` in a worker thread of this process. Off the loop's thread, but not
    off its lock: at 10,000 members the computation's Python (the rows' conversion, the
    scoring) holds the GIL for seconds, and every step of every message waits its turn for
    it (measured with bench/loop_stall.py: check-ins' p50 went to 2 s). Kept for tools and
    tests; the server uses `in_a_process`."""

    async def compute(day: dt.date, as_of: dt.datetime) -> MonthStandings:
        return await asyncio.to_thread(compute_standings, url, context, day, as_of)

    return compute


_helper: ProcessPoolExecutor | None = None


HELPER_NICENESS = 10


def _lower_priority() -> None:
    # A background computation: on a busy machine the kernel runs the server's messages
    # first (on 2 cores the helper's seconds of CPU otherwise lengthen every reply).
    os.nice(HELPER_NICENESS)


def _helper_process() -> ProcessPoolExecutor:
    """One helper process per server process ("spawn": a fresh interpreter, nothing of this
    process's loop, threads or connections), at a lower CPU priority; it lives as long as
    the server process (the executor's exit handler stops it)."""
    global _helper
    if _helper is None:
        _helper = ProcessPoolExecutor(
            max_workers=1, mp_context=mp.get_context("spawn"), initializer=_lower_priority
        )
    return _helper


async def run_in_helper(work: Callable[[], T]) -> T:
    """`work` (picklable, blocking) in the helper process; the reports page's computations
    run there too, one at a time with the standings."""
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(_helper_process(), work)
    except BrokenProcessPool:
        global _helper
        _helper = None  # the helper died (killed, out of memory): the next one starts anew
        raise


def in_a_process(url: str, context: Context) -> Compute:
    """`compute_standings` in a helper process: nothing of it runs in this one but sending
    the question and reading back the answer (a few arrays of integers). The helper starts
    now, in the background: its start (a second or two of imports) is not a member's wait."""
    _helper_process().submit(os.getpid)

    async def compute(day: dt.date, as_of: dt.datetime) -> MonthStandings:
        return await run_in_helper(functools.partial(compute_standings, url, context, day, as_of))

    return compute


def computation_for(engine: AsyncEngine, context: Context) -> Compute:
    """In a helper process on a reader of `engine`'s database. An in-memory SQLite database
    cannot be opened a second time: there (tools and tests only, never a server) on `engine`
    itself, on the loop."""
    database = engine.url.database
    if engine.dialect.name == "sqlite" and (not database or database == ":memory:"):
        sessions = session_factory(engine)

        async def on_the_loop(day: dt.date, as_of: dt.datetime) -> MonthStandings:
            return await _compute(sessions, context, day, as_of)

        return on_the_loop
    return in_a_process(engine.url.render_as_string(hide_password=False), context)


class Standings:
    """The month's standings so far, computed at most once per `max_age`, one at a time."""

    def __init__(
        self,
        clock: Clock,
        compute: Compute,
        *,
        max_age: dt.timedelta = DEFAULT_MAX_AGE,
        wait: float = DEFAULT_WAIT_S,
    ) -> None:
        self.clock = clock
        self.compute = compute
        self.max_age = max_age
        self.wait = wait
        self._latest: MonthStandings | None = None
        self._running: dict[dt.date, asyncio.Task[MonthStandings]] = {}
        self._one_at_a_time = asyncio.Lock()
        self.computations = 0  # how many have been started (the tests read it)

    @property
    def latest(self) -> MonthStandings | None:
        return self._latest

    def _fresh(self, day: dt.date) -> MonthStandings | None:
        latest = self._latest
        if latest is None or latest.day != day:
            return None
        return latest if self.clock.now() - latest.as_of < self.max_age else None

    async def month_so_far(self) -> MonthStandings | None:
        """Through today: the kept standings while fresh, else a new computation's (waited
        for up to `wait` seconds). When it takes longer or fails: the older standings of the
        same month, if any, or None (the reply then asks to try again in a moment)."""
        day = today(self.clock)
        fresh = self._fresh(day)
        if fresh is not None:
            return fresh
        task = self._running.get(day) or self._start(day)
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.wait)
        except TimeoutError:
            log.info("month standings for %s still computing; answering with older ones", day)
        except Exception:  # logged by `_finished`; older standings may still serve
            pass
        latest = self._latest
        if latest is not None and (latest.day.year, latest.day.month) == (day.year, day.month):
            return latest
        return None

    def _start(self, day: dt.date) -> asyncio.Task[MonthStandings]:
        task = asyncio.create_task(self._refresh(day), name=f"month standings {day}")
        self._running[day] = task
        task.add_done_callback(lambda done: self._finished(day, done))
        return task

    async def _refresh(self, day: dt.date) -> MonthStandings:
        async with self._one_at_a_time:
            fresh = self._fresh(day)  # computed while this one waited its turn
            if fresh is not None:
                return fresh
            self.computations += 1
            return await self.compute(day, self.clock.now())

    def _finished(self, day: dt.date, task: asyncio.Task[MonthStandings]) -> None:
        self._running.pop(day, None)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("month standings for %s failed", day, exc_info=error)
            return
        found = task.result()
        latest = self._latest
        if latest is None or (found.day, found.as_of) >= (latest.day, latest.as_of):
            self._latest = found
