"""Reports for the console's 报表 page: the same computation as `qiyi report`, run in the
standings' helper process (a year at 10,000 members takes many seconds of Python) and kept a
few minutes per period, so a page is served from what was computed, never waits for it."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import Clock, today
from bot.reports import standings
from bot.reports.bulletins import (
    Context,
    in_progress,
    month_documents,
    quarter_report,
    year_report,
)
from bot.reports.documents import Report
from bot.reports.periods import PeriodKind, ReportPeriod
from data.db import Sessions, create_reader, session_factory

log = logging.getLogger(__name__)

BUILDERS = {
    PeriodKind.MONTH: month_documents,
    PeriodKind.QUARTER: quarter_report,
    PeriodKind.YEAR: year_report,
}
DEFAULT_MAX_AGE = dt.timedelta(minutes=10)
WAIT_S = 0.3  # a quick computation (a month of a small roster) is shown at once

ComputeReport = Callable[[ReportPeriod, dt.date], Awaitable[Report]]


async def build(sessions: Sessions, context: Context, period: ReportPeriod, day: dt.date) -> Report:
    """The period's report as `qiyi report` makes it, cut at `day` while in progress."""
    async with sessions() as session:
        return await BUILDERS[period.kind](session, period, context, in_progress(period, day))


def compute_report(url: str, context: Context, period: ReportPeriod, day: dt.date) -> Report:
    """`build` as one blocking call for the helper process: a loop and a reader of its own."""

    async def compute() -> Report:
        engine = create_reader(url)
        try:
            return await build(session_factory(engine), context, period, day)
        finally:
            await engine.dispose()

    return asyncio.run(compute())


def computation_for(engine: AsyncEngine, context: Context) -> ComputeReport:
    """In the helper process on a reader of `engine`'s database; an in-memory SQLite database
    (tools and tests) on the loop, as for the standings."""
    database = engine.url.database
    if engine.dialect.name == "sqlite" and (not database or database == ":memory:"):
        sessions = session_factory(engine)

        async def on_the_loop(period: ReportPeriod, day: dt.date) -> Report:
            return await build(sessions, context, period, day)

        return on_the_loop
    url = engine.url.render_as_string(hide_password=False)

    async def in_the_helper(period: ReportPeriod, day: dt.date) -> Report:
        work = functools.partial(compute_report, url, context, period, day)
        return await standings.run_in_helper(work)

    return in_the_helper


@dataclass(frozen=True)
class Kept:
    report: Report
    day: dt.date  # the day it was computed through (today, for a period in progress)
    at: dt.datetime


class ReportCache:
    """Each period's report, computed once per `max_age`, one computation at a time."""

    def __init__(
        self,
        clock: Clock,
        compute: ComputeReport,
        *,
        max_age: dt.timedelta = DEFAULT_MAX_AGE,
        wait: float = WAIT_S,
    ) -> None:
        self.clock = clock
        self.compute = compute
        self.max_age = max_age
        self.wait = wait
        self._kept: dict[tuple[str, int, int], Kept] = {}
        self._running: dict[tuple[str, int, int], asyncio.Task[Kept]] = {}
        self._one_at_a_time = asyncio.Lock()
        self.computations = 0

    @staticmethod
    def _key(period: ReportPeriod) -> tuple[str, int, int]:
        return (period.kind.value, period.year, period.number)

    def _fresh(self, period: ReportPeriod) -> Kept | None:
        kept = self._kept.get(self._key(period))
        if kept is None or self.clock.now() - kept.at >= self.max_age:
            return None
        return kept

    async def get(self, period: ReportPeriod) -> Kept | None:
        """The kept report while fresh; else a new computation's, waited for `wait` seconds;
        meanwhile the older one, or None (the page says it is being computed)."""
        fresh = self._fresh(period)
        if fresh is not None:
            return fresh
        key = self._key(period)
        task = self._running.get(key)
        if task is None:
            task = asyncio.create_task(self._refresh(period), name=f"report {key}")
            self._running[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.wait)
        except TimeoutError:
            pass
        except Exception:  # logged by `_finished`
            pass
        return self._kept.get(key)

    async def settled(self) -> None:
        """Wait for the computations under way (tools and tests)."""
        await asyncio.gather(*self._running.values(), return_exceptions=True)

    def forget(self) -> None:
        """Drop every kept report (a month was closed, reopened or graded)."""
        self._kept.clear()

    async def _refresh(self, period: ReportPeriod) -> Kept:
        async with self._one_at_a_time:
            fresh = self._fresh(period)
            if fresh is not None:
                return fresh
            self.computations += 1
            day = today(self.clock)
            at = self.clock.now()
            kept = Kept(await self.compute(period, day), day, at)
            self._kept[self._key(period)] = kept
            return kept

    def _finished(self, key: tuple[str, int, int], task: asyncio.Task[Kept]) -> None:
        self._running.pop(key, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("report %s failed", key, exc_info=task.exception())
