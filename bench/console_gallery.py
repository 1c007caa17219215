"""Benchmark of the console's two heaviest pages: 资料 (a branch's gallery with 500 materials
in one month) and 报表 (the year's report of 10,000 members), on SQLite and PostgreSQL.

The data is `bench/console.py`'s (`bench/console_data.py`: the year 2026 of 10,000 members in
40 branches, with bindings, audit log and outbox), plus what the secretary of branch 1 sent
in December: 500 materials — 440 photos (1440 × 1080 JPEGs of about 255 KB, each different),
40 videos (1 MB MP4s) and 20 PDFs — each with its file fetched and kept in a directory media
store, as the fetch job leaves them. The server is the real app on loopback (the clock at
31 December 2026, 17:00), with the admin and that secretary signed in.

1. 资料: the month's overview (every branch's count, admin), the branch's gallery (its first
   and last page of 60) for both roles, `--runs` times each after 2 warm-up requests; the
   60 thumbnails of the first page, each on its first view (decoded and made by Pillow in a
   thread) and then kept; a photo's original.
2. 报表: the year 2026 for the admin. The page never computes: the first request starts the
   computation in the helper process (`bot/reports/report_cache.py`) and answers "正在计算"
   after waiting up to 0.3 s; the time until the report is there is shown apart; then the
   kept report, `--runs` times, and its chart (drawn once, then kept). Measured twice: with no
   month closed, and with January–November closed (关账, as the office would have by the end
   of December: their figures are frozen), each in a freshly started server.

    .venv/bin/python -m bench.console_gallery --backend both --markdown
    .venv/bin/python -m bench.console_gallery --members 1000 --runs 20 --backend sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import hashlib
import io
import os
import platform
import re
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import sqlalchemy
from PIL import Image, ImageDraw
from rich.console import Console
from sqlalchemy import make_url

from bench import console, console_data, tables
from bench.console import (
    NOW,
    BenchmarkError,
    RunOptions,
    Server,
    Viewer,
    add_run_options,
    command_line,
    database,
    get,
    migrate_and_load,
    serving,
    sign_in,
    timed,
)
from bench.reports import Rows, local
from bot import grading
from bot.appkeys import CONVERSATION, SESSIONS
from bot.reports.periods import PeriodKind, ReportPeriod
from data import audit
from data.db import transaction
from data.media.directory import DirectoryStore
from data.media.store import read_chunks
from data.models import FetchState, Material, MaterialFile

MEMBERS, WARM_UP = 10_000, 2  # --branches and --runs: bench/console.py's
SETTLE = 5  # rounds over every gallery page before any is timed
P95_GOAL_MS = 200.0
BRANCH = 1  # the secretary signed in is branch 1's
MONTH = dt.date(2026, 12, 1)
PHOTOS, VIDEOS, DOCUMENTS = 440, 40, 20
PHOTO_SIZE = (1440, 1080)  # WeChat's "not original" photo of a phone's 4:3 picture
VIDEO_BYTES = 1024 * 1024
YEAR = ReportPeriod(PeriodKind.YEAR, 2026, 0)
COMPUTING = "报表正在计算".encode()
READY_WAIT_S = 3600.0  # a niced helper on a busy machine is slow
POLL_S = 0.25


# ---- the materials ------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """One material's file: its kind, type, name and bytes."""

    kind: str
    mime: str
    name: str
    data: bytes


def photos(count: int) -> list[bytes]:
    """Distinct JPEG photos: a noisy texture (so each weighs what a photo weighs) under a
    coloured gradient, with a mark of its own."""
    width, height = PHOTO_SIZE
    texture = Image.effect_noise(PHOTO_SIZE, 12).convert("RGB")
    found = []
    for n in range(count):
        tint = Image.new("RGB", PHOTO_SIZE, ((n * 37) % 256, (n * 91) % 256, (n * 53) % 256))
        picture = Image.blend(texture, tint, 0.55)
        draw = ImageDraw.Draw(picture)
        x, y = (n * 97) % (width - 300), (n * 61) % (height - 200)
        draw.rectangle((x, y, x + 300, y + 200), fill=((n * 11) % 256, 200, (n * 7) % 256))
        out = io.BytesIO()
        picture.save(out, format="JPEG", quality=85)
        found.append(out.getvalue())
    return found


def materials_sent() -> list[Sent]:
    """December's 500 files of branch 1, photos first, then videos and documents interleaved
    the way a month's sending mixes them."""
    sent = [Sent("image", "image/jpeg", "", data) for data in photos(PHOTOS)]
    for n in range(VIDEOS):
        head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
        data = head + hashlib.sha256(str(n).encode()).digest() * (VIDEO_BYTES // 32)
        sent.insert(n * 11 + 5, Sent("video", "video/mp4", f"活动视频{n + 1}.mp4", data))
    for n in range(DOCUMENTS):
        data = b"%PDF-1.4\n" + f"支部会议记录 {n}\n".encode() * 4000 + b"%%EOF\n"
        sent.insert(n * 23 + 7, Sent("file", "application/pdf", f"会议记录{n + 1}.pdf", data))
    return sent


async def keep_files(sent: list[Sent], folder: Path) -> list[tuple[str, int]]:
    """Each file put in a directory media store at `folder`; (sha256, size) of each."""
    store = DirectoryStore(folder)
    kept = []
    for item in sent:
        stored = await store.put(read_chunks(io.BytesIO(item.data)), limit=len(item.data))
        kept.append((stored.sha256, stored.size))
    return kept


def add_materials(
    dataset: console_data.Loaded, sent: list[Sent], kept: list[tuple[str, int]]
) -> list[int]:  # `sent`'s bytes may be gone: only kinds, types and names are read
    """December's materials of branch 1, sent by its secretary through the month, each with
    its file stored; their ids (photos' first)."""
    rows = next(t for t in dataset.rows.tables if t.model is Material)
    files = Rows(
        MaterialFile,
        ("id", "material_id", "state", "attempts", "due_at", "done_at", "sha256", "size", "mime",
         "original_name"),
    )  # fmt: skip
    first_id = max(row[0] for row in rows.rows) + 1
    days = (NOW.date() - MONTH).days + 1
    photo_ids = []
    for n, (item, (sha, size)) in enumerate(zip(sent, kept, strict=True)):
        material_id = first_id + n
        day = MONTH + dt.timedelta(days=n * days // len(sent))
        at = local(day, 9 + n % 10, n % 60)
        rows.add(material_id, BRANCH, dataset.staff.secretary_id, item.kind, "wechat",
                 f"media-dec-{n}", f"支部活动资料{n + 1}", day, at)  # fmt: skip
        files.add(n + 1, material_id, FetchState.STORED.value, 1, at,
                  at + dt.timedelta(minutes=1), sha, size, item.mime, item.name)  # fmt: skip
        if item.kind == "image":
            photo_ids.append(material_id)
    at = dataset.rows.tables.index(rows) + 1
    dataset.rows.tables.insert(at, files)
    return photo_ids


# ---- measuring ----------------------------------------------------------------------------


class Timing(console.Timing):
    """A request's timings, `page` what was asked for (a page, a thumbnail, a chart)."""

    @property
    def cells(self) -> str:
        if len(self.seconds) == 1:
            return f"{self.seconds[0] * 1000:,.0f} (once)"
        return f"{self.ms(0.5):.1f} / {self.ms(0.95):.1f}"


@dataclass
class Results:
    timings: list[Timing] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def add(self, progress: Console, timings: list[Timing]) -> None:
        """Kept, and logged as measured (a long run's figures survive its end)."""
        self.timings += timings
        for t in timings:
            progress.log(f"{t.backend} {t.role} {t.page}: {t.cells} ms", markup=False)

    def ready(self, progress: Console, backend: str, case: str, seconds: float | None) -> None:
        when = (
            f"was there {seconds:.1f} s after the first request"
            if seconds is not None
            else f"was not there {READY_WAIT_S:.0f} s after the first request"
        )
        self.lines.append(f"{backend}: the year's report, {case}, {when}")
        progress.log(self.lines[-1], markup=False)


async def repeated(
    timing: Timing, http: aiohttp.ClientSession, server: Server, viewer: Viewer, path: str,
    runs: int,
) -> Timing:  # fmt: skip
    for _ in range(WARM_UP):
        await get(http, server, viewer, path)
    for _ in range(runs):
        timing.seconds.append((await timed(http, server, viewer, path))[0])
    return timing


async def time_gallery(
    backend: str, http: aiohttp.ClientSession, server: Server, admin: Viewer,
    secretary: Viewer, photo_ids: list[int], runs: int,
) -> list[Timing]:  # fmt: skip
    month = MONTH.strftime("%Y-%m")
    first_page = await get(http, server, admin, f"/admin/materials?branch={BRANCH}&month={month}")
    shown = [i for i in photo_ids if f"/admin/materials/{i}/thumb".encode() in first_page]
    # The data set may add a few materials of its own to the branch's month (at small sizes).
    counted = re.search(r"(\d+) 份", first_page.decode())
    if not shown or counted is None or int(counted[1]) < PHOTOS + VIDEOS + DOCUMENTS:
        raise BenchmarkError("the gallery does not show the branch's 500 materials")
    found = []
    pages = [
        ("资料: the branch's gallery, page 1 of 9", secretary, f"/admin/materials?month={month}"),
        ("资料: the branch's gallery, page 9 of 9", secretary,
         f"/admin/materials?month={month}&page=9"),
        ("资料: the month, every branch's count", admin, f"/admin/materials?month={month}"),
        ("资料: the branch's gallery, page 1 of 9", admin,
         f"/admin/materials?branch={BRANCH}&month={month}"),
        ("资料: the branch's gallery, page 9 of 9", admin,
         f"/admin/materials?branch={BRANCH}&month={month}&page=9"),
    ]  # fmt: skip
    for _ in range(SETTLE):  # the server's first requests (caches, pools) are not timed
        for _label, viewer, path in pages:
            await get(http, server, viewer, path)
    for label, viewer, path in pages:
        found.append(
            await repeated(Timing(backend, label, viewer.role), http, server, viewer, path, runs)
        )
    # The thumbnails of the first page, each on its first view, then kept; an original.
    cold = Timing(backend, f"资料: a thumbnail, first view ({len(shown)} photos)", "admin")
    for material_id in shown:
        path = f"/admin/materials/{material_id}/thumb"
        cold.seconds.append((await timed(http, server, admin, path))[0])
    found.append(cold)
    warm = Timing(backend, "资料: a thumbnail, kept", "admin")
    for n in range(runs):
        path = f"/admin/materials/{shown[n % len(shown)]}/thumb"
        warm.seconds.append((await timed(http, server, admin, path))[0])
    found.append(warm)
    original = f"/admin/materials/{shown[0]}/file"
    found.append(
        await repeated(Timing(backend, "资料: a photo's original", "admin"),
                       http, server, admin, original, runs)
    )  # fmt: skip
    return found


async def time_report(
    backend: str, label: str, http: aiohttp.ClientSession, server: Server, admin: Viewer,
    runs: int,
) -> tuple[list[Timing], float | None]:  # fmt: skip
    """The year's report in a server that has not computed it: the first request, the
    seconds until the report is there (None: not within `READY_WAIT_S`), then the kept
    report and its chart."""
    path = f"/admin/reports?period={YEAR.label}"
    started = time.perf_counter()
    first_seconds, body = await timed(http, server, admin, path)
    first = Timing(backend, f"报表 {YEAR.label} ({label}): the first request", "admin")
    first.seconds.append(first_seconds)
    while COMPUTING in body:
        if time.perf_counter() - started > READY_WAIT_S:
            return [first], None
        await asyncio.sleep(POLL_S)
        body = await get(http, server, admin, path)
    ready = time.perf_counter() - started
    kept = await repeated(
        Timing(backend, f"报表 {YEAR.label} ({label}): kept", "admin"),
        http, server, admin, path, runs,
    )  # fmt: skip
    chart_path = body.decode().split('<img class="chart" src="', 1)[1].split('"', 1)[0]
    chart_path = chart_path.replace("&amp;", "&")
    drawn = Timing(backend, f"报表 {YEAR.label} ({label}): its chart, first (drawn)", "admin")
    drawn.seconds.append((await timed(http, server, admin, chart_path))[0])
    chart = await repeated(
        Timing(backend, f"报表 {YEAR.label} ({label}): its chart, kept", "admin"),
        http, server, admin, chart_path, runs,
    )  # fmt: skip
    return [first, kept, drawn, chart], ready


async def close_months(server: Server) -> float:
    """January–November closed by the admin (their figures frozen); the seconds it took."""
    conversation = server.app[CONVERSATION]
    actor = audit.Actor(audit.Door.CLI, "cli:bench@localhost", "localhost")
    started = time.perf_counter()
    for month in range(1, 12):
        async with transaction(server.app[SESSIONS]) as session:
            await grading.close_month(
                session,
                actor,
                ReportPeriod(PeriodKind.MONTH, 2026, month),
                conversation.report_context,
                today=NOW.date(),
                at=NOW,
            )
    return time.perf_counter() - started


async def run_backend(
    backend: str, url: str, dataset: console_data.Loaded, photo_ids: list[int], media: Path,
    options: RunOptions, results: Results, progress: Console,
) -> None:  # fmt: skip
    setup = await migrate_and_load(url, dataset.rows, progress, backend)
    results.lines.append(
        f"{backend}: {dataset.rows.total:,} rows inserted in {setup.insert_seconds:.0f} s, "
        f"{setup.statistics} {setup.analyze_seconds:.0f} s (not timed)"
    )
    progress.log(results.lines[-1], markup=False)
    database_file = make_url(url).database
    if backend == "sqlite" and database_file:  # as a server that has run a while
        with contextlib.closing(sqlite3.connect(database_file)) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    # The data set (millions of rows in this process, not in a server's) out of the
    # collector's way while the server is timed.
    gc.collect()
    gc.freeze()
    try:
        await serve_and_time(
            backend, url, dataset.staff, photo_ids, media, options, results, progress
        )
    finally:
        gc.unfreeze()


async def serve_and_time(
    backend: str, url: str, staff: console_data.Staff, photo_ids: list[int], media: Path,
    options: RunOptions, results: Results, progress: Console,
) -> None:  # fmt: skip
    async with aiohttp.ClientSession() as http:
        async with serving(url, media_dir=media) as server:
            admin = await sign_in(server, "admin", staff.admin_id, None)
            secretary = await sign_in(server, "secretary", staff.secretary_id, BRANCH)
            progress.log(f"{backend}: 资料")
            results.add(
                progress,
                await time_gallery(
                    backend, http, server, admin, secretary, photo_ids, options.runs
                ),
            )
            progress.log(f"{backend}: 报表 {YEAR.label}, no month closed")
            timings, ready = await time_report(backend, "open", http, server, admin, options.runs)
            results.add(progress, timings)
            results.ready(progress, backend, "no month closed", ready)
            progress.log(f"{backend}: closing January–November")
            closing = await close_months(server)
            results.lines.append(
                f"{backend}: closing January–November (each month computed and frozen) took "
                f"{closing:.1f} s (not timed)"
            )
            progress.log(results.lines[-1], markup=False)
        async with serving(url, media_dir=media) as server:  # a fresh start: nothing kept
            admin = await sign_in(server, "admin", staff.admin_id, None)
            progress.log(f"{backend}: 报表 {YEAR.label}, January–November closed")
            timings, ready = await time_report(
                backend, "Jan–Nov closed", http, server, admin, options.runs
            )
            results.add(progress, timings)
            results.ready(progress, backend, "January–November closed", ready)


async def run(options: RunOptions, progress: Console) -> Results:
    results = Results()
    progress.log(f"generating the data set: {options.members:,} members")
    dataset = console_data.generate(options.members, options.branches, NOW.date())
    progress.log("making December's 500 files of branch 1")
    sent = materials_sent()
    with tempfile.TemporaryDirectory(prefix="qiyi-bench-gallery-") as folder:
        media = Path(folder) / "media"
        kept = await keep_files(sent, media)
        photo_bytes = [len(s.data) for s in sent if s.kind == "image"]
        results.lines.append(
            f"files: {PHOTOS} photos ({PHOTO_SIZE[0]} × {PHOTO_SIZE[1]} JPEG, "
            f"{min(photo_bytes) // 1024}–{max(photo_bytes) // 1024} KB), {VIDEOS} videos of "
            f"{VIDEO_BYTES // 1024 // 1024} MB, {DOCUMENTS} PDFs; kept in a directory store"
        )
        shapes = [Sent(s.kind, s.mime, s.name, b"") for s in sent]
        del sent
        photo_ids = add_materials(dataset, shapes, kept)
        for backend in options.backends:
            async with database(backend, Path(folder), options.postgres) as url:
                await run_backend(
                    backend, url, dataset, photo_ids, media, options, results, progress
                )
    return results


# ---- the report ---------------------------------------------------------------------------


def parse_options(argv: Sequence[str] | None = None) -> RunOptions:
    parser = argparse.ArgumentParser(
        prog="python -m bench.console_gallery",
        description="Time the console's gallery of a branch with 500 materials and the year's "
        "report page, on SQLite and PostgreSQL.",
    )
    parser.add_argument("--members", type=int, default=MEMBERS, help="members (10,000)")
    add_run_options(parser)
    args = parser.parse_args(argv)
    if args.members < 2 * args.branches or args.branches < 1 or args.runs < 1:
        parser.error("need --members ≥ 2 × --branches, --branches ≥ 1, --runs ≥ 1")
    return RunOptions.parsed(args)


def rows(results: Results, backends: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    columns = ["what", "role", *(f"{b} p50 / p95 ms" for b in backends)]
    by_key = {(t.backend, t.page, t.role): t for t in results.timings}
    order = dict.fromkeys((t.page, t.role) for t in results.timings)
    found = []
    for what, role in order:
        cells = [
            by_key[(b, what, role)].cells if (b, what, role) in by_key else "" for b in backends
        ]
        found.append([what, role, *cells])
    return columns, found


def verdicts(results: Results) -> list[str]:
    repeated = [t for t in results.timings if len(t.seconds) > 1]
    slow = [t for t in repeated if t.ms(0.95) >= P95_GOAL_MS]
    once = [
        t for t in results.timings if len(t.seconds) == 1 and t.seconds[0] * 1000 >= P95_GOAL_MS
    ]
    lines = [
        f"p95 < {P95_GOAL_MS:.0f} ms on every repeated request: "
        + ("met" if not slow else "MISSED by " + ", ".join(
            f"{t.backend} {t.role} {t.page} ({t.ms(0.95):.0f} ms)" for t in slow))
    ]  # fmt: skip
    if once:
        lines.append(
            f"single requests over {P95_GOAL_MS:.0f} ms: "
            + ", ".join(f"{t.backend} {t.page} ({t.seconds[0] * 1000:,.0f} ms)" for t in once)
        )
    return lines


def header_lines(options: RunOptions) -> list[str]:
    return [
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs (shared with other jobs: one run)",
        f"SQLite {sqlite3.sqlite_version}, SQLAlchemy {sqlalchemy.__version__}",
        f"data: bench/console.py's year 2026 for {options.members:,} members in "
        f"{options.branches} branches, and branch {BRANCH}'s {PHOTOS + VIDEOS + DOCUMENTS} "
        f"materials of December; clock at {NOW:%Y-%m-%d %H:%M} Asia/Shanghai; {WARM_UP} "
        f"warm-up and {options.runs} timed requests per page",
        f"command: {command_line(options.postgres)}",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    progress = Console(stderr=True, log_path=False)
    try:
        results = asyncio.run(run(options, progress))
    except BenchmarkError as problem:
        progress.print(f"[bold red]failed:[/] {problem}")
        return 1
    header = header_lines(options)
    footer = results.lines + verdicts(results)
    columns, found = rows(results, options.backends)
    if options.markdown:
        tables.print_markdown(columns, found, header, footer)
        return 0
    tables.print_rich(Console(width=200), header, tables.rich_table(columns, found), footer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
