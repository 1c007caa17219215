"""The message path without HTTP: `Conversation.respond` in this process, per command.

What the webhook benchmark cannot separate from the HTTP server and the load generator: the
time and the SQL statements one message costs inside the bot (one transaction: the member,
the handler, the notices check, the processed key with the reply). The mix of
bench/webhook.py (学习 N, 今日, 积分, unknown text) from 1,000 bound members, each message
with its own key, sent one after another (so the figures are the cost of a message, not of
waiting for the SQLite write lock).

Databases: SQLite with the server's inline engine (`data.db.inline_twin`), SQLite with the
threaded aiosqlite engine (what every statement cost before the message path ran inline),
and PostgreSQL when `--postgres URL` is given (a throwaway database on that server).

    .venv/bin/python -m bench.conversation
    .venv/bin/python -m bench.conversation --messages 5000 \
        --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test

Printed per database and command: messages, µs per message (mean, p50, p99 of the wall
time), CPU µs per message (this process: on PostgreSQL the server's work is not in it) and
SQL statements per message (the message's own, counted by an engine event over 500 more
messages after the timed ones, since the listener slows every statement down; BEGIN,
COMMIT and the pool's ping are not counted).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bench import tables
from bench.databases import postgres_database, sqlite_database
from bench.webhook import UNKNOWN_TEXTS, hidden, openid_of, seed_qiyi
from bot.app import build_conversation
from bot.clock import SystemClock
from bot.messages import ContactWindow, Inbound, InboundKind, Sender
from bot.settings import Settings
from data.db import create_engine
from data.sqlite_inline import checkpoints_off_the_loop

MEMBERS = 1_000
WINDOW = ContactWindow(dt.timedelta(hours=48), 5)
KINDS = ("学习 N", "今日", "积分", "unknown")
COUNTED = 500  # messages whose SQL statements are counted, after the timed ones
MIX = ["学习 N"] * 5 + ["今日"] * 2 + ["积分"] * 2 + ["unknown"]


@dataclass
class Row:
    database: str
    kind: str
    messages: int
    mean_us: float
    p50_us: float
    p99_us: float
    cpu_us: float
    statements: float


def message_text(kind: str, rng: random.Random) -> str:
    if kind == "学习 N":
        return f"学习 {rng.randint(1, 60)}"
    if kind == "unknown":
        return rng.choice(UNKNOWN_TEXTS)
    return kind


@asynccontextmanager
async def counted(engine: AsyncEngine) -> AsyncIterator[list[int]]:
    """A one-element list holding the number of statements `engine` has executed."""
    count = [0]

    def one_more(*_: Any) -> None:
        count[0] += 1

    event.listen(engine.sync_engine, "before_cursor_execute", one_more)
    try:
        yield count
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", one_more)


async def measure(label: str, url: str, messages: int, seed: int) -> list[Row]:
    await seed_qiyi(url)
    inline = label != "sqlite, threaded"
    engine = create_engine(url, inline=inline)
    values: dict[str, Any] = {"database_url": url, "wechat_token": "t", "scheduler": "off"}
    settings = Settings(_env_file=None, **values)
    clock = SystemClock(settings.zone)
    conversation = build_conversation(settings, clock, engine)
    rng = random.Random(seed)
    minutes: Counter[str] = Counter()

    def inbound(kind: str) -> Inbound:
        openid = openid_of(rng.randrange(MEMBERS))
        text = message_text(kind, rng)
        if kind == "学习 N":
            minutes[openid] += int(text.split()[1])
            if minutes[openid] > 1_380:  # stay under the day's 24 hours
                text = "今日"
        sender = Sender("wechat", openid)
        return Inbound(sender, uuid.uuid4().hex, InboundKind.TEXT, clock.now(), text, WINDOW)

    try:
        # As the server runs: the WAL checkpointed in a thread (data.sqlite_inline).
        async with checkpoints_off_the_loop(engine):
            for _ in range(200):  # warm-up: caches, pool, statistics
                await conversation.respond(inbound(rng.choice(MIX)))
            wall: dict[str, list[float]] = defaultdict(list)
            cpu: Counter[str] = Counter()
            for _ in range(messages):
                kind = rng.choice(MIX)
                message = inbound(kind)
                before_cpu = time.process_time()
                start = time.perf_counter()
                await conversation.respond(message)
                wall[kind].append(time.perf_counter() - start)
                cpu[kind] += time.process_time() - before_cpu
            # Counted apart: a statement listener on the engine slows every statement down.
            statements: Counter[str] = Counter()
            sent: Counter[str] = Counter()
            async with counted(engine) as count:
                for _ in range(COUNTED):
                    kind = rng.choice(MIX)
                    before_count = count[0]
                    await conversation.respond(inbound(kind))
                    statements[kind] += count[0] - before_count
                    sent[kind] += 1
    finally:
        await engine.dispose()
    rows = []
    for kind in (*KINDS, "all"):
        times = sorted(t for k in KINDS for t in wall[k]) if kind == "all" else sorted(wall[kind])
        spent = sum(cpu.values()) if kind == "all" else cpu[kind]
        counted_statements = sum(statements.values()) if kind == "all" else statements[kind]
        counted_messages = sum(sent.values()) if kind == "all" else sent[kind]
        n = len(times)
        rows.append(
            Row(
                label,
                kind,
                n,
                statistics.fmean(times) * 1e6,
                times[n // 2] * 1e6,
                times[min(n - 1, int(n * 0.99))] * 1e6,
                spent / n * 1e6,
                counted_statements / max(1, counted_messages),
            )
        )
    return rows


async def run(messages: int, postgres: str | None, seed: int) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="qiyi-bench-") as folder:
        for label in ("sqlite, inline", "sqlite, threaded"):
            async with sqlite_database(Path(folder)) as url:
                rows += await measure(label, url, messages, seed)
    if postgres:
        async with postgres_database(postgres) as url:
            rows += await measure("postgresql", url, messages, seed)
    return rows


def print_rows(rows: Sequence[Row], command: str) -> None:
    columns = ["database", "message", "messages", "mean µs", "p50 µs", "p99 µs", "CPU µs"]
    columns.append("statements")
    table = [
        [
            r.database,
            r.kind,
            f"{r.messages:,}",
            f"{r.mean_us:,.0f}",
            f"{r.p50_us:,.0f}",
            f"{r.p99_us:,.0f}",
            f"{r.cpu_us:,.0f}",
            f"{r.statements:.1f}",
        ]
        for r in rows
    ]
    tables.print_markdown(columns, table, [f"command: {command}"], [])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.conversation", description=__doc__)
    parser.add_argument("--messages", type=int, default=3_000, help="measured messages per DB")
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server to measure too")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.messages < 100:
        parser.error("--messages: at least 100")
    rows = asyncio.run(run(args.messages, args.postgres, args.seed))
    command = f"python -m bench.conversation --messages {args.messages}"
    if args.postgres:
        command += f" --postgres {hidden(args.postgres)}"
    print_rows(rows, command)


if __name__ == "__main__":
    main()
