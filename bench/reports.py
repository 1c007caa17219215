"""Benchmark of the reports: the month's scores, the quarter's bulletin, the year's summary.

For each database it builds a realistic year 2026 in a fresh database (not timed, but the
time it took is printed):

- 37 branches, 1,000 members who joined on 2025-12-01;
- about 400,000 study entries: each member studies on ~300 of the 365 days, one or two
  entries a day (a third of the days two) of 10–150 minutes;
- the points ledger those entries, notes, quiz answers and approvals earn under
  `content/rules.toml` (study blocks, goal and streak bonuses, notes, weekly articles,
  quiz, volunteer hours): about 500,000 rows, as the bot would have written them;
- ~3,000 volunteer entries (85 % approved, the rest pending), ~20,000 notes of 50–1,500
  characters, 50 lessons with ~30,000 reads and ~20,000 quiz answers, 400 materials;

bulk-inserted with SQLAlchemy core, then analysed (SQLite: ANALYZE, unless --no-analyze;
PostgreSQL: VACUUM (ANALYZE), as autovacuum would have done). It then measures, with
`time.perf_counter`, the best of 3 runs (a fresh session each run) of

1. `month_report` for 2026-10 (the issue's goal: under 1 s on SQLite),
2. `quarter_report` for 2026Q3 (its months, the previous quarter's, and its own figures),
3. `year_report` for 2026 (its months and the year's figures),

and splits each best run into the time spent in `data.figures.member_figures` (the SQL; the
table counts its calls per report), in `bot.reports.scoring.score_branches` (Python) and
the rest. `--profile` adds, for one month run per database, cProfile's top 10 cumulative
entries, the time of every SQL statement, and the plan of the slowest ones (EXPLAIN QUERY
PLAN on SQLite, EXPLAIN ANALYZE on PostgreSQL).

    .venv/bin/python -m bench.reports
    .venv/bin/python -m bench.reports --no-analyze
    .venv/bin/python -m bench.reports --markdown --profile
    .venv/bin/python -m bench.reports --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test

Temporary files and databases are removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import io
import json
import os
import platform
import pstats
import random
import re
import shlex
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy
from rich.console import Console
from rich.table import Table
from sqlalchemy import event, func, insert, make_url, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel, col

import bot.reports.bulletins as bulletins
import data.figures as figures_module
from bench import tables
from bench.databases import admin as _admin
from bench.databases import postgres_database, postgres_version, sqlite_database
from bot.reports.bulletins import Context, month_report, quarter_report, year_report
from bot.reports.periods import ReportPeriod, parse_period
from bot.rules import PointsRules, load_rules
from data import migrate
from data.db import Sessions, create_engine, session_factory
from data.models import (
    Article,
    ArticleKind,
    ArticleRead,
    Branch,
    Material,
    Member,
    Note,
    PointsEntry,
    QuizAnswer,
    ReviewState,
    Role,
    StudyEntry,
    VolunteerEntry,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
YEAR = 2026
GOAL = 120  # QIYI_DAILY_GOAL_MINUTES' default
JOINED = dt.datetime(2025, 12, 1, tzinfo=SHANGHAI)
SEED = 42

BRANCHES = 37
MEMBERS = 1_000
STUDY_DAYS = (285, 315)  # days of the year a member studies on, drawn per member
TWO_ENTRIES_SHARE = 1 / 3  # share of study days with two entries (else one)
STUDY_MINUTES = (10, 150)
VOLUNTEER_PER_MEMBER = 3
VOLUNTEER_APPROVED_SHARE = 0.85
NOTES_PER_MEMBER = 20
NOTE_CHARS = (50, 1_500)
LESSONS = 50
READS_PER_MEMBER = 30
ANSWERS_PER_MEMBER = 20
CORRECT_SHARE = 0.75
MATERIALS = 400
INSERT_CHUNK = 5_000

MONTH, QUARTER, WHOLE_YEAR = "2026-10", "2026Q3", "2026"
MONTH_GOAL_SECONDS = 1.0
DEFAULT_RUNS = 3
SLOWEST_PLANS = 3  # statements whose plan --profile prints

# Filler for notes and lessons: realistic multi-byte text of any length up to this.
PROSE = ("学习党的二十大精神，坚持理论联系实际，把学习成果转化为推动工作的实际行动。" * 60)[
    : NOTE_CHARS[1]
]


class BenchmarkError(Exception):
    """The product did something other than what the benchmark expects (a wrong sum)."""


# ---- the data set -----------------------------------------------------------------------


@dataclass
class Rows:
    """One table's rows as tuples (far lighter than dicts); turned into dicts per chunk."""

    model: type[SQLModel]
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def add(self, *values: Any) -> None:
        self.rows.append(values)

    def chunks(self, size: int) -> Iterator[list[dict[str, Any]]]:
        for start in range(0, len(self.rows), size):
            yield [
                dict(zip(self.columns, row, strict=True)) for row in self.rows[start : start + size]
            ]

    @property
    def name(self) -> str:
        return str(self.model.__tablename__)


@dataclass
class Dataset:
    tables: list[Rows]  # in foreign-key order
    generate_seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(len(t.rows) for t in self.tables)

    def count(self, model: type[SQLModel]) -> int:
        return next(len(t.rows) for t in self.tables if t.model is model)


def local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), SHANGHAI)


class Ledger:
    """The points ledger as `bot/awards.py` would have written it."""

    def __init__(self, rows: Rows) -> None:
        self.rows = rows
        self.next_id = 1

    def award(
        self, member_id: int, points: int, source: str, ref: str, day: dt.date, at: dt.datetime
    ) -> None:
        if points <= 0:
            return
        self.rows.add(self.next_id, member_id, points, source, ref, f"{source} {day}", day, at)
        self.next_id += 1


def build_dataset(
    rules: PointsRules,
    members_count: int = MEMBERS,
    first: dt.date = dt.date(YEAR, 1, 1),
    day_count: int = 365,
    branch_count: int = BRANCHES,
) -> Dataset:
    """The year 2026 of 1,000 members, from random.Random(42) (the same on every database).

    Other sizes (bench/loop_stall.py: 10,000 members, a month so far) scale what a member
    does in a year to the `day_count` days from `first`; the defaults draw exactly the same
    numbers as before. `branch_count` branches share the members in turn."""
    started = time.perf_counter()
    rng = random.Random(SEED)
    days = [first + dt.timedelta(days=n) for n in range(day_count)]

    def scaled(per_year: int) -> int:
        return per_year if day_count == 365 else max(1, round(per_year * day_count / 365))

    lessons = scaled(LESSONS)
    reads_per_member = min(lessons, scaled(READS_PER_MEMBER))
    answers_per_member = min(reads_per_member, scaled(ANSWERS_PER_MEMBER))

    branches = Rows(Branch, ("id", "name"))
    for b in range(1, branch_count + 1):
        branches.add(b, f"第{b}党支部")

    members = Rows(
        Member,
        ("id", "roster_id", "name", "branch_id", "role", "joined_at", "reminder_enabled",
         "reminder_time"),
    )  # fmt: skip
    secretary: dict[int, int] = {}  # branch id -> its secretary's member id
    for m in range(1, members_count + 1):
        branch_id = (m - 1) % branch_count + 1
        role = Role.MEMBER
        if branch_id not in secretary:
            secretary[branch_id] = m
            role = Role.SECRETARY
        members.add(m, str(100_000 + m), f"成员{m}", branch_id, role.value, JOINED, True, None)

    articles = Rows(
        Article,
        ("id", "slug", "kind", "title", "summary", "body", "url", "publish_at", "quiz_question",
         "quiz_options", "quiz_answer", "quiz_explanation", "pushed_at"),
    )  # fmt: skip
    published: dict[int, dt.datetime] = {}
    options = json.dumps(["A. 是", "B. 否", "C. 不确定"], ensure_ascii=False)
    for a in range(1, lessons + 1):
        # Mondays 09:00 in 2026 (its first Monday is 4 days after the 1st of January)
        at = local(first + dt.timedelta(days=4, weeks=a - 1), 9)
        published[a] = at
        articles.add(
            a, f"lesson-{YEAR}-{a:02d}", ArticleKind.LESSON.value, f"微党课第{a}讲",
            PROSE[:80], PROSE[:1_200], "", at, "本讲的要点是什么？", options, "A", PROSE[:40], at,
        )  # fmt: skip

    study = Rows(StudyEntry, ("id", "member_id", "day", "minutes", "note", "created_at"))
    volunteer = Rows(
        VolunteerEntry,
        ("id", "member_id", "minutes", "description", "day", "state", "reviewer_id",
         "reviewed_at", "reason", "created_at"),
    )  # fmt: skip
    notes = Rows(Note, ("id", "member_id", "day", "chars", "text", "created_at"))
    reads = Rows(ArticleRead, ("id", "member_id", "article_id", "read_at"))
    answers = Rows(
        QuizAnswer, ("id", "member_id", "article_id", "choice", "correct", "answered_at")
    )
    points = Rows(
        PointsEntry, ("id", "member_id", "points", "source", "ref", "reason", "day", "created_at")
    )
    ledger = Ledger(points)

    for m in range(1, members_count + 1):
        branch_id = (m - 1) % branch_count + 1

        # Study: entries, and the study/goal/streak awards of bot/awards.py:for_study.
        streak, last_goal_day = 0, None
        study_days = rng.randint(*STUDY_DAYS)
        if day_count != 365:
            study_days = round(study_days * day_count / 365)
        for day in sorted(rng.sample(days, study_days)):
            hour = rng.randint(6, 20)
            total = paid = 0
            for k in range(2 if rng.random() < TWO_ENTRIES_SHARE else 1):
                minutes = rng.randint(*STUDY_MINUTES)
                at = local(day, hour + 2 * k, rng.randrange(60))
                entry_id = len(study.rows) + 1
                study.add(entry_id, m, day, minutes, "", at)
                total += minutes
                owed = min(
                    rules.study_daily_cap,
                    total // rules.study_block_minutes * rules.study_points,
                )
                ledger.award(m, owed - paid, "study", f"study:{entry_id}", day, at)
                paid = max(paid, owed)
                if total >= GOAL and last_goal_day != day:
                    yesterday = day - dt.timedelta(days=1)
                    streak = streak + 1 if last_goal_day == yesterday else 1
                    last_goal_day = day
                    ledger.award(m, rules.goal_bonus, "goal", f"goal:{day}", day, at)
                    if streak % rules.streak_days == 0:
                        ledger.award(m, rules.streak_bonus, "streak", f"streak:{day}", day, at)

        # Volunteer hours: most approved (and paid) the next day, some still pending.
        for day in rng.sample(days, scaled(VOLUNTEER_PER_MEMBER)):
            minutes = 30 * rng.randint(1, 8)
            entry_id = len(volunteer.rows) + 1
            at = local(day, 18)
            if rng.random() < VOLUNTEER_APPROVED_SHARE:
                reviewed = at + dt.timedelta(days=1)
                volunteer.add(
                    entry_id, m, minutes, "社区志愿服务", day, ReviewState.APPROVED.value,
                    secretary[branch_id], reviewed, "", at,
                )  # fmt: skip
                amount = minutes // 30 * rules.volunteer_per_hour // 2
                ledger.award(
                    m, amount, "volunteer", f"volunteer:{entry_id}", reviewed.date(), reviewed
                )
            else:
                volunteer.add(
                    entry_id, m, minutes, "社区志愿服务", day, ReviewState.PENDING.value,
                    None, None, "", at,
                )  # fmt: skip

        # Notes, with the note and weekly-article awards of for_note.
        weeks_paid: set[tuple[int, int]] = set()
        for day in sorted(rng.sample(days, scaled(NOTES_PER_MEMBER))):
            chars = rng.randint(*NOTE_CHARS)
            at = local(day, 21)
            notes.add(len(notes.rows) + 1, m, day, chars, PROSE[:chars], at)
            if chars >= rules.note_min_chars:
                ledger.award(m, rules.note_points, "note", f"note:{day}", day, at)
            week = day.isocalendar()[:2]
            if chars >= rules.article_min_chars and week not in weeks_paid:
                weeks_paid.add(week)
                ref = f"article:{week[0]}-W{week[1]:02d}"
                ledger.award(m, rules.article_bonus, "article", ref, day, at)

        # Lessons read within four days of publication; two thirds of them answered.
        read = []
        for article_id in rng.sample(range(1, lessons + 1), reads_per_member):
            at = published[article_id] + dt.timedelta(minutes=rng.randint(5, 4 * 24 * 60))
            reads.add(len(reads.rows) + 1, m, article_id, at)
            read.append((article_id, at))
        for article_id, read_at in rng.sample(read, answers_per_member):
            at = read_at + dt.timedelta(minutes=rng.randint(1, 30))
            correct = rng.random() < CORRECT_SHARE
            answers.add(len(answers.rows) + 1, m, article_id, "A" if correct else "B", correct, at)
            if correct:
                day = at.astimezone(SHANGHAI).date()
                ledger.award(m, rules.quiz_correct, "quiz", f"quiz:{article_id}", day, at)

    materials = Rows(
        Material,
        ("id", "branch_id", "member_id", "kind", "channel", "reference", "description", "day",
         "created_at"),
    )  # fmt: skip
    for n in range(1, scaled(MATERIALS) + 1):
        branch_id = rng.randint(1, branch_count)
        day = rng.choice(days)
        materials.add(
            n, branch_id, secretary[branch_id], rng.choice(("image", "video", "file")), "wechat",
            f"media-{n}", "支部活动", day, local(day, 15),
        )  # fmt: skip

    dataset = Dataset(
        [branches, members, articles, study, volunteer, notes, reads, answers, points, materials]
    )
    dataset.generate_seconds = time.perf_counter() - started
    return dataset


# ---- databases --------------------------------------------------------------------------


def _sqlite_bytes(database: str) -> int:
    """The database file and its write-ahead log, as they stand."""
    files = (Path(f"{database}{suffix}") for suffix in ("", "-wal"))
    return sum(f.stat().st_size for f in files if f.exists())


@dataclass
class Setup:
    insert_seconds: float
    analyze_seconds: float
    statistics: str  # what gathered the planner's statistics
    database_bytes: int | None  # SQLite only


async def load(engine: AsyncEngine, url: str, dataset: Dataset, analyze: bool) -> Setup:
    """Bulk-insert the data set with core `insert`, then gather the planner's statistics.

    `analyze` False leaves SQLite without statistics, as the product leaves its database
    (nothing in it runs ANALYZE or PRAGMA optimize)."""
    started = time.perf_counter()
    async with engine.begin() as connection:
        for table in dataset.tables:
            for chunk in table.chunks(INSERT_CHUNK):
                await connection.execute(insert(table.model), chunk)
    inserted = time.perf_counter()
    if engine.dialect.name == "postgresql":
        # Explicit ids leave the sequences behind; nothing inserts afterwards, but keep the
        # database coherent. A year-old database has also been vacuumed by autovacuum (the
        # visibility map index-only scans rely on), hence VACUUM as well as ANALYZE.
        async with engine.begin() as connection:
            for table in dataset.tables:
                await connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"(SELECT max(id) FROM {table.name}))"
                    )
                )
        await _admin(url, "VACUUM (ANALYZE)")
        statistics = "VACUUM (ANALYZE)"
    elif analyze:
        async with engine.begin() as connection:
            await connection.execute(text("ANALYZE"))
        statistics = "ANALYZE"
    else:
        statistics = "no ANALYZE"
    analysed = time.perf_counter()
    size = None
    database = make_url(url).database
    if engine.dialect.name == "sqlite" and database:
        size = _sqlite_bytes(database)
    return Setup(inserted - started, analysed - inserted, statistics, size)


async def count_rows(engine: AsyncEngine, dataset: Dataset) -> dict[str, int]:
    """Rows per seeded table, as the database counts them."""
    found: dict[str, int] = {}
    async with engine.connect() as connection:
        for table in dataset.tables:
            statement = select(func.count()).select_from(table.model)
            found[table.name] = int((await connection.execute(statement)).scalar_one())
    return found


# ---- measuring --------------------------------------------------------------------------


@dataclass
class Split:
    """Where one report run spent its time."""

    figures: float = 0.0
    figures_calls: int = 0
    scoring: float = 0.0


@contextlib.contextmanager
def split_timing() -> Iterator[Split]:
    """Time `member_figures` and `score_branches` as the report code calls them.

    `bulletins` reaches `member_figures` through the module (`figures.member_figures`) and
    `score_branches` through its own name, so those two attributes are wrapped for the run.
    """
    split = Split()
    original_figures = figures_module.member_figures
    original_scoring = bulletins.score_branches

    async def timed_figures(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original_figures(*args, **kwargs)
        finally:
            split.figures += time.perf_counter() - started
            split.figures_calls += 1

    def timed_scoring(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original_scoring(*args, **kwargs)
        finally:
            split.scoring += time.perf_counter() - started

    figures_module.member_figures = timed_figures  # type: ignore[assignment]
    bulletins.score_branches = timed_scoring  # type: ignore[assignment]
    try:
        yield split
    finally:
        figures_module.member_figures = original_figures  # type: ignore[assignment]
        bulletins.score_branches = original_scoring  # type: ignore[assignment]


Builder = Callable[..., Awaitable[Any]]


@dataclass
class Run:
    seconds: float
    split: Split


@dataclass
class Measurement:
    database: str
    label: str  # "month 2026-10"
    study_rows: int  # study entries inside the report's span
    database_rows: int
    runs: list[Run]

    @property
    def best(self) -> Run:
        return min(self.runs, key=lambda r: r.seconds)


async def study_totals(engine: AsyncEngine, period: ReportPeriod) -> tuple[int, int]:
    """Study entries inside the report's span, and their minutes."""
    span = period.span
    statement = select(func.count(), func.coalesce(func.sum(StudyEntry.minutes), 0)).where(
        col(StudyEntry.day) >= span.first, col(StudyEntry.day) <= span.last
    )
    async with engine.connect() as connection:
        count, minutes = (await connection.execute(statement)).one()
    return int(count), int(minutes)


def check(label: str, report: Any, minutes: int) -> None:
    """The report covers every branch and member and sums the study time the database holds."""
    if isinstance(report, (bulletins.MonthReport, bulletins.QuarterReport)):
        found = sum(m.minutes for m in report.members)
        branches = len(report.branches)
        people = len(report.members)
    else:
        found = round(report.study_hours * 60)
        branches = len(report.branches)
        people = report.members
        minutes = round(round(minutes / 60, 1) * 60)
    if branches != BRANCHES or people != MEMBERS or found != minutes:
        raise BenchmarkError(
            f"{label}: {branches} branches, {people} members, {found} study minutes; expected "
            f"{BRANCHES}, {MEMBERS}, {minutes}"
        )


async def measure(
    database: str,
    engine: AsyncEngine,
    sessions: Sessions,
    label: str,
    builder: Builder,
    period: ReportPeriod,
    context: Context,
    runs: int,
    database_rows: int,
) -> Measurement:
    count, minutes = await study_totals(engine, period)
    result = Measurement(database, label, count, database_rows, [])
    for _ in range(runs):
        with split_timing() as split:
            started = time.perf_counter()
            async with sessions() as session:
                report = await builder(session, period, context)
            seconds = time.perf_counter() - started
        check(label, report, minutes)
        result.runs.append(Run(seconds, split))
    return result


# ---- profiling --------------------------------------------------------------------------


@dataclass
class Statement:
    sql: str
    parameters: Any
    seconds: float = 0.0
    calls: int = 0


@contextlib.contextmanager
def statement_timing(engine: AsyncEngine) -> Iterator[dict[str, Statement]]:
    """Wall time of every SQL statement, measured around the driver's execute.

    The async drivers run a statement and fetch all its rows inside that call (aiosqlite in
    its worker thread, which cProfile does not see), so this is the statement's whole cost.
    """
    found: dict[str, Statement] = {}
    sync_engine = engine.sync_engine

    def before(
        _conn: Any, _cursor: Any, sql: str, parameters: Any, context: Any, _many: bool
    ) -> None:
        context._bench_started = time.perf_counter()

    def after(
        _conn: Any, _cursor: Any, sql: str, parameters: Any, context: Any, _many: bool
    ) -> None:
        entry = found.setdefault(sql, Statement(sql, parameters))
        entry.seconds += time.perf_counter() - context._bench_started
        entry.calls += 1

    event.listen(sync_engine, "before_cursor_execute", before)
    event.listen(sync_engine, "after_cursor_execute", after)
    try:
        yield found
    finally:
        event.remove(sync_engine, "before_cursor_execute", before)
        event.remove(sync_engine, "after_cursor_execute", after)


def statement_label(sql: str) -> str:
    """A short name for a statement: its tables and its opening, on one line."""
    flat = " ".join(sql.split())
    tables = list(dict.fromkeys(re.findall(r"\b(?:FROM|JOIN)\s+(\w+)", flat)))
    tables = [t for t in tables if not t.startswith("anon_")]
    opening = flat if len(flat) <= 90 else f"{flat[:90]}…"
    return f"[{', '.join(tables)}] {opening}" if tables else opening


async def explain(engine: AsyncEngine, statement: Statement) -> list[str]:
    """The plan of one recorded statement, with the parameters it ran with."""
    if engine.dialect.name == "sqlite":
        prefix = "EXPLAIN QUERY PLAN "
    else:
        prefix = "EXPLAIN (ANALYZE, BUFFERS) "
    async with engine.connect() as connection:
        result = await connection.exec_driver_sql(prefix + statement.sql, statement.parameters)
        rows = result.fetchall()
    if engine.dialect.name == "sqlite":
        # (id, parent, notused, detail): indent by depth.
        depth: dict[int, int] = {0: -1}
        lines = []
        for node, parent, _unused, detail in rows:
            depth[node] = depth.get(parent, -1) + 1
            lines.append("  " * depth[node] + str(detail))
        return lines
    return [str(row[0]) for row in rows]


@dataclass
class Profile:
    database: str
    seconds: float
    cprofile: list[str]
    statements: list[Statement]
    plans: list[tuple[Statement, list[str]]]


async def profile_month(
    database: str, engine: AsyncEngine, sessions: Sessions, context: Context
) -> Profile:
    """One more month run under cProfile and the statement timer (not counted above)."""
    period = parse_period(MONTH)
    profiler = cProfile.Profile()
    with statement_timing(engine) as statements:
        started = time.perf_counter()
        profiler.enable()
        async with sessions() as session:
            await month_report(session, period, context)
        profiler.disable()
        seconds = time.perf_counter() - started
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs().sort_stats(pstats.SortKey.CUMULATIVE).print_stats(10)
    lines = out.getvalue().strip().splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    slowest = sorted(statements.values(), key=lambda s: -s.seconds)
    plans = [(s, await explain(engine, s)) for s in slowest[:SLOWEST_PLANS]]
    return Profile(database, seconds, lines[start:], slowest, plans)


# ---- the run ----------------------------------------------------------------------------


@dataclass
class Options:
    postgres: str | None
    markdown: bool
    profile: bool
    runs: int
    analyze: bool


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.reports",
        description="Benchmark the month, quarter and year reports over a year of data.",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="also measure on PostgreSQL; a throwaway database is created on this server, "
        "e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument("--markdown", action="store_true", help="print plain Markdown")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile one month run per database: cProfile's top 10 cumulative entries, "
        "every SQL statement's time and the plans of the slowest",
    )
    parser.add_argument(
        "--no-analyze",
        dest="analyze",
        action="store_false",
        help="leave SQLite without ANALYZE statistics, as the product leaves it "
        "(PostgreSQL is analysed either way, as autovacuum would)",
    )
    parser.add_argument(
        "--runs", type=int, default=DEFAULT_RUNS, help="runs per report; the best counts (3)"
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs: at least 1")
    return Options(args.postgres, args.markdown, args.profile, args.runs, args.analyze)


@dataclass
class Backend:
    database: str
    setup: Setup
    rows: dict[str, int]
    measurements: list[Measurement]
    profile: Profile | None


async def run_backend(
    database: str, url: str, dataset: Dataset, context: Context, options: Options, progress: Console
) -> Backend:
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
        progress.log(f"{database}: inserting {dataset.total:,} rows")
        setup = await load(engine, url, dataset, options.analyze)
        rows = await count_rows(engine, dataset)
        progress.log(
            f"{database}: inserted in {setup.insert_seconds:.1f} s, "
            f"{setup.statistics} in {setup.analyze_seconds:.1f} s"
        )
        sessions = session_factory(engine)
        total = sum(rows.values())
        measurements = []
        for kind, text_period, builder in (
            ("month", MONTH, month_report),
            ("quarter", QUARTER, quarter_report),
            ("year", WHOLE_YEAR, year_report),
        ):
            label = f"{kind} {text_period}"
            progress.log(f"{database}: {label}, {options.runs} runs")
            found = await measure(
                database, engine, sessions, label, builder, parse_period(text_period), context,
                options.runs, total,
            )  # fmt: skip
            measurements.append(found)
            progress.log(f"{database}: {label}: best {found.best.seconds:.3f} s")
        profile = None
        if options.profile:
            progress.log(f"{database}: profiling one month run")
            profile = await profile_month(database, engine, sessions, context)
    finally:
        await engine.dispose()
    return Backend(database, setup, rows, measurements, profile)


async def run(options: Options, dataset: Dataset, progress: Console) -> list[Backend]:
    context = Context(SHANGHAI, GOAL, load_rules())
    backends: list[Backend] = []
    sqlite = "sqlite" if options.analyze else "sqlite (no ANALYZE)"
    with tempfile.TemporaryDirectory(prefix="qiyi-bench-") as folder:
        async with sqlite_database(Path(folder)) as url:
            backends.append(await run_backend(sqlite, url, dataset, context, options, progress))
    if options.postgres:
        async with postgres_database(options.postgres) as url:
            backends.append(
                await run_backend("postgresql", url, dataset, context, options, progress)
            )
    return backends


# ---- the report -------------------------------------------------------------------------

COLUMNS = (
    "database",
    "report",
    "member_figures calls",
    "study rows in span",
    "rows in database",
    "best s",
    "runs s",
    "member_figures",
    "scoring",
    "rest",
)


def share(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f} %" if whole > 0 else "-"


def rows(backends: list[Backend]) -> list[list[str]]:
    found = []
    for backend in backends:
        for m in backend.measurements:
            best = m.best
            rest = best.seconds - best.split.figures - best.split.scoring
            found.append(
                [
                    m.database,
                    m.label,
                    str(best.split.figures_calls),
                    f"{m.study_rows:,}",
                    f"{m.database_rows:,}",
                    f"{best.seconds:.3f}",
                    " ".join(f"{r.seconds:.3f}" for r in m.runs),
                    share(best.split.figures, best.seconds),
                    share(best.split.scoring, best.seconds),
                    share(rest, best.seconds),
                ]
            )
    return found


def command_line(options: Options) -> str:
    """The command as typed, with a PostgreSQL password hidden."""
    words = list(sys.orig_argv)
    if options.postgres:
        hidden = make_url(options.postgres).render_as_string(hide_password=True)
        words = [word.replace(options.postgres, hidden) for word in words]
    return shlex.join(words)


def header_lines(options: Options, pg_version: str | None, dataset: Dataset) -> list[str]:
    lines = [
        f"Python {platform.python_version()} ({platform.python_implementation()}) on "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        f"SQLite {sqlite3.sqlite_version}, SQLAlchemy {sqlalchemy.__version__}",
    ]
    if pg_version:
        lines.append(f"PostgreSQL server {pg_version}")
    lines.append(
        f"data: {YEAR}, {BRANCHES} branches, {MEMBERS:,} members, random.Random({SEED}); "
        f"generated in {dataset.generate_seconds:.1f} s (not timed); goal {GOAL} min, "
        f"Asia/Shanghai, content/rules.toml"
    )
    lines.append("rows: " + ", ".join(f"{t.name} {len(t.rows):,}" for t in dataset.tables))
    lines.append(f"command: {command_line(options)}")
    return lines


def setup_lines(backends: list[Backend]) -> list[str]:
    lines = []
    for b in backends:
        size = (
            f", {b.setup.database_bytes / 1024 / 1024:.0f} MiB on disk"
            if b.setup.database_bytes
            else ""
        )
        statistics = b.setup.statistics
        if b.setup.analyze_seconds > 0.05:
            statistics += f" {b.setup.analyze_seconds:.1f} s"
        lines.append(
            f"{b.database}: {sum(b.rows.values()):,} rows inserted in "
            f"{b.setup.insert_seconds:.1f} s, {statistics}{size} (not timed)"
        )
    return lines


def verdicts(backends: list[Backend]) -> list[str]:
    lines = []
    for b in backends:
        month = b.measurements[0]
        seconds = month.best.seconds
        ok = seconds < MONTH_GOAL_SECONDS
        lines.append(
            f"{b.database}: {month.label} for {MEMBERS:,} members in {BRANCHES} branches in "
            f"{seconds:.3f} s (goal < {MONTH_GOAL_SECONDS:g} s"
            f"{' on SQLite' if b.database.startswith('sqlite') else ''}): "
            f"{'met' if ok else 'MISSED'}"
        )
    return lines


def profile_sections(profile: Profile) -> list[tuple[str, list[str]]]:
    """(title, lines) for the profile of one database."""
    total = sum(s.seconds for s in profile.statements)
    statement_lines = [
        f"{s.seconds:8.4f} s  {s.calls:3d}×  {statement_label(s.sql)}" for s in profile.statements
    ]
    statement_lines.append(
        f"{total:8.4f} s  in {sum(s.calls for s in profile.statements)} statements, "
        f"of a {profile.seconds:.4f} s run"
    )
    sections = [
        (
            f"{profile.database}: month {MONTH} under cProfile, top 10 cumulative (ncalls "
            f"counts each resumption of a coroutine; SQL runs in the driver, its time shows "
            f"as waiting in the event loop)",
            profile.cprofile,
        ),
        (f"{profile.database}: SQL statements of that run, slowest first", statement_lines),
    ]
    for s, plan in profile.plans:
        title = f"{profile.database}: plan of {s.seconds:.4f} s statement"
        sections.append((title, [" ".join(s.sql.split()), "", *plan]))
    return sections


def print_markdown(backends: list[Backend], header: list[str], footer: list[str]) -> None:
    tables.print_markdown(COLUMNS, rows(backends), header, footer)
    for b in backends:
        if b.profile:
            for title, lines in profile_sections(b.profile):
                print()
                print(f"**{title}**")
                print()
                print("```text")
                print("\n".join(lines))
                print("```")


def print_rich(
    console: Console, backends: list[Backend], header: list[str], footer: list[str]
) -> None:
    for line in header:
        console.print(line, highlight=False, soft_wrap=True, markup=False)
    table = Table(title="Reports: month_report, quarter_report, year_report (best of runs)")
    for i, column in enumerate(COLUMNS):
        table.add_column(column, justify="left" if i < 2 else "right", no_wrap=True)
    for row in rows(backends):
        table.add_row(*row)
    console.print(table)
    for line in footer:
        console.print(line, highlight=False, soft_wrap=True, markup=False)
    for b in backends:
        if b.profile:
            for title, lines in profile_sections(b.profile):
                console.print()
                console.rule(title, align="left")
                console.print("\n".join(lines), highlight=False, soft_wrap=True, markup=False)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    progress = Console(stderr=True, log_path=False)
    progress.log("generating the data set")
    dataset = build_dataset(load_rules().points)
    progress.log(f"generated {dataset.total:,} rows in {dataset.generate_seconds:.1f} s")
    try:
        pg_version = asyncio.run(postgres_version(options.postgres)) if options.postgres else None
        backends = asyncio.run(run(options, dataset, progress))
    except BenchmarkError as problem:
        progress.print(f"[bold red]wrong result:[/] {problem}")
        return 1
    header = header_lines(options, pg_version, dataset)
    footer = setup_lines(backends) + verdicts(backends)
    if options.markdown:
        print_markdown(backends, header, footer)
    else:
        print_rich(tables.terminal(width=200), backends, header, footer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
