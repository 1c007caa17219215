"""Benchmark of a material's fetch: a video of 1, 20 and 40 MB fetched by the durable job
(`bot/material_fetch.py`) from the fake WeChat API on loopback (`/cgi-bin/media/get`, then the
`video_url` it answers) and kept in the media store — memory must not grow with the size.

For each database and store (a directory; S3 on moto's server, started as a process of its
own so its memory is not counted), a secretary's video material is queued and the job run
once per size, smallest first. Measured per fetch: the peak of Python's allocations over
what was allocated before (`tracemalloc`, every thread: the fake server streams in this
process too, so the peak counts both ends), the growth of the process's resident set
high-water mark (`ru_maxrss`: a body held whole would raise it by its size), and the time.
The stored file's size and SHA-256 are checked against the body sent.

    .venv/bin/python -m bench.media_memory --backend both --markdown
    .venv/bin/python -m bench.media_memory --sizes 1 20 40 --store directory
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import hashlib
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
from rich.console import Console
from sqlmodel import select

from bench import tables
from bench.console import (
    add_backend_option,
    add_postgres_option,
    backends_of,
    command_line,
    database,
)
from bench.pushes import serve_fake
from bot.app import wechat_api_for
from bot.clock import FixedClock
from bot.material_fetch import MaterialFetcher
from bot.messages import Media
from bot.settings import Settings
from data import materials, members, migrate
from data.db import create_engine, session_factory, transaction
from data.media.s3 import S3Store
from data.media.store import MediaStore, open_store
from data.members import RosterRow
from data.models import MaterialFile, Role
from tests.fakes.wechat_api import FakeWeChat, repeated

NOW = dt.datetime(2026, 12, 31, 17, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
MB = 1024 * 1024
SIZES = (1, 20, 40)
BLOCK = 64 * 1024
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
# The largest body's peak over the one before it (40 MB over 20 MB): held whole, it would be
# ×2; streamed, about ×1. S3 holds one part (5 MiB, S3's least) while it is sent.
FLAT_BOUND = 1.2
SECRETARY = RosterRow("1003", "王芳", "第一党支部", Role.SECRETARY)


class BenchmarkError(Exception):
    """The fetch did not keep what was sent, or a helper server did not start."""


@dataclass
class Measurement:
    backend: str
    store: str
    size: int  # bytes
    peak: int  # bytes over what was allocated before
    rss_growth: int  # KiB the resident high-water mark rose during the fetch
    seconds: float


def body_of(size: int) -> tuple[bytes, str]:
    """The block a video of `size` bytes repeats (an MP4's header first) and its SHA-256,
    computed a block at a time."""
    block = MP4_HEAD + bytes(BLOCK - len(MP4_HEAD))
    digest = hashlib.sha256()
    for chunk in repeated(block, size)():
        digest.update(chunk)
    return block, digest.hexdigest()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 server as a process of its own on loopback; its host:port."""
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("moto_server")),
        "-H",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline or process.poll() is not None:
                raise BenchmarkError("moto_server did not start")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@contextlib.asynccontextmanager
async def fake_wechat() -> AsyncIterator[tuple[FakeWeChat, str]]:
    """The fake WeChat API on a loopback port of this process; its base URL."""
    fake = FakeWeChat()
    async with serve_fake(fake.app()) as base:
        yield fake, base


async def measure_store(
    backend: str, url: str, store_name: str, s3_endpoint: str | None, folder: Path,
    sizes: Sequence[int],
) -> list[Measurement]:  # fmt: skip
    engine = create_engine(url)
    await migrate.upgrade(engine)
    sessions = session_factory(engine)
    clock = FixedClock(NOW)
    s3_url = None
    if s3_endpoint:
        s3_url = f"s3://bench:secret@{s3_endpoint}/qiyi-{uuid.uuid4().hex[:12]}?secure=false"
    found = []
    try:
        async with fake_wechat() as (fake, base), aiohttp.ClientSession() as http:
            settings = Settings(  # type: ignore[call-arg]
                _env_file=None, database_url=url, wechat_token="bench", scheduler="off",
                wechat_appid=fake.appid, wechat_secret=fake.secret, wechat_api_base=base,
                media_dir=folder / "media", media_s3_url=s3_url,
                media_max_video_mb=max(sizes) + 1,
            )  # fmt: skip
            store: MediaStore = open_store(settings.media_dir, settings.media_s3_url)
            if isinstance(store, S3Store):
                await store.ensure_bucket()
            api = wechat_api_for(settings, http, sessions, clock)
            fetcher = MaterialFetcher(settings, clock, sessions, store, http, api)
            async with transaction(sessions) as session:
                await members.upsert_roster(session, [SECRETARY], NOW)
            await fetcher.run_once()  # nothing due: the first round's imports and token
            for megabytes in sizes:
                found.append(await fetch_one(backend, store_name, megabytes * MB, fake, fetcher))
    finally:
        await engine.dispose()
    return found


async def fetch_one(
    backend: str, store_name: str, size: int, fake: FakeWeChat, fetcher: MaterialFetcher
) -> Measurement:
    """One video of `size` bytes sent by the secretary, fetched by one round of the job."""
    block, sha = body_of(size)
    media_id = fake.add_media(
        content_type="video/mp4", video=True, chunks=repeated(block, size), size=size,
        filename="主题党日.mp4",
    )  # fmt: skip
    async with transaction(fetcher.sessions) as session:
        secretary = await members.member_by_roster_id(session, SECRETARY.member_id)
        assert secretary is not None and secretary.id is not None
        await materials.add(
            session, secretary.branch_id, secretary.id, "wechat", [Media("video", media_id)],
            "主题党日视频", NOW.date(), NOW,
        )  # fmt: skip
    gc.collect()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        started = time.perf_counter()
        counts = await fetcher.run_once()
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    if counts != {"stored": 1}:
        raise BenchmarkError(f"{size:,} bytes: the fetch ended {dict(counts)}")
    async with fetcher.sessions() as session:
        kept = (await session.exec(select(MaterialFile).where(MaterialFile.sha256 == sha))).first()
    if kept is None or kept.size != size or await fetcher.store.size(sha) != size:
        raise BenchmarkError(f"{size:,} bytes: not kept as sent")
    return Measurement(backend, store_name, size, peak, rss_growth, seconds)


async def run(options: Options, progress: Console) -> list[Measurement]:
    found: list[Measurement] = []
    with contextlib.ExitStack() as stack:
        endpoint = None
        if "s3" in options.stores:
            progress.log("starting moto's S3 server")
            endpoint = stack.enter_context(moto_server())
        for backend in options.backends:
            for store in options.stores:
                progress.log(f"{backend}, {store}: {', '.join(map(str, options.sizes))} MB")
                with tempfile.TemporaryDirectory(prefix="qiyi-bench-media-") as folder:
                    async with database(backend, Path(folder), options.postgres) as url:
                        found += await measure_store(
                            backend, url, store, endpoint if store == "s3" else None,
                            Path(folder), options.sizes,
                        )  # fmt: skip
    return found


# ---- the report ---------------------------------------------------------------------------


@dataclass
class Options:
    backends: tuple[str, ...]
    stores: tuple[str, ...]
    sizes: tuple[int, ...]
    postgres: str
    markdown: bool


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.media_memory",
        description="Fetch videos of growing sizes through the material fetch job and show "
        "that its memory does not grow with them.",
    )
    add_backend_option(parser)
    parser.add_argument("--store", choices=("directory", "s3", "both"), default="both")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=list(SIZES), metavar="MB",
        help="video sizes in MB, smallest first (1 20 40)",
    )  # fmt: skip
    add_postgres_option(parser)
    parser.add_argument("--markdown", action="store_true", help="print plain Markdown")
    args = parser.parse_args(argv)
    sizes = tuple(sorted(set(args.sizes)))
    if len(sizes) < 2 or sizes[0] < 1 or sizes[-1] > 1000:
        parser.error("need at least two sizes of 1-1000 MB")
    backends = backends_of(args.backend)
    stores = ("directory", "s3") if args.store == "both" else (args.store,)
    return Options(backends, stores, sizes, args.postgres, args.markdown)


def rows(found: list[Measurement]) -> tuple[list[str], list[list[str]]]:
    columns = [
        "database",
        "store",
        "video MB",
        "peak KiB (tracemalloc)",
        "RSS high-water +KiB",
        "s",
    ]
    return columns, [
        [m.backend, m.store, f"{m.size // MB}", f"{m.peak / 1024:,.0f}", f"{m.rss_growth:,}",
         f"{m.seconds:.2f}"]
        for m in found
    ]  # fmt: skip


def verdicts(found: list[Measurement], sizes: Sequence[int]) -> list[str]:
    lines = []
    for backend, store in dict.fromkeys((m.backend, m.store) for m in found):
        mine = [m for m in found if (m.backend, m.store) == (backend, store)]
        largest, second = mine[-1], mine[-2]
        ratio = largest.peak / max(1, second.peak)
        flat = ratio <= FLAT_BOUND
        lines.append(
            f"{backend}, {store}: peak {second.peak / 1024:,.0f} KiB at {sizes[-2]} MB, "
            f"{largest.peak / 1024:,.0f} KiB at {sizes[-1]} MB (×{ratio:.2f}; "
            f"{largest.peak / largest.size:.1%} of the body): "
            + ("flat" if flat else "GROWS with the size")
        )
    return lines


def header_lines(options: Options) -> list[str]:
    return [
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs (shared with other jobs)",
        f"command: {command_line(options.postgres)}",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    progress = Console(stderr=True, log_path=False)
    try:
        found = asyncio.run(run(options, progress))
    except BenchmarkError as problem:
        progress.print(f"[bold red]failed:[/] {problem}")
        return 1
    header = header_lines(options)
    footer = verdicts(found, options.sizes)
    columns, table_rows = rows(found)
    if options.markdown:
        tables.print_markdown(columns, table_rows, header, footer, text_columns=2)
        return 0
    tables.print_rich(Console(width=160), header, tables.rich_table(columns, table_rows), footer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
