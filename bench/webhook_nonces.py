"""What remembering plain-mode nonces costs a WeChat message (`POST /wechat`, no AES key).

In plain mode each (timestamp, nonce) pair is inserted into `seenrequest`, first in the
message's own transaction (bot/conversation.py, `Inbound.pair`). This runs the server in this
process behind aiohttp's test client on loopback, seeded with the 1,000 bound members of
bench/webhook.py, and posts signed plain `学习 N` / `今日` / `积分` messages one after another,
in rounds that alternate with the memory on and off (the webhook's `remember_pairs`), so
both see the same machine. Printed: per database, the median over rounds of µs per message
(wall, and CPU of this process) with and without, and the difference.

    .venv/bin/python -m bench.webhook_nonces
    .venv/bin/python -m bench.webhook_nonces --rounds 10 --messages 300 \
        --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from bench import tables
from bench.databases import postgres_database, sqlite_database
from bench.webhook import MEMBERS, hidden, openid_of, seed_qiyi
from bot.app import create_app
from bot.channels.wechat import WeChatWebhook
from bot.channels.wechat_sample import signed_request
from bot.clock import SystemClock, unix_seconds
from bot.settings import Settings

TOKEN = "bench-token"
TEXTS = ("学习 1", "今日", "积分")


def webhook_of(client: TestClient) -> WeChatWebhook:
    for route in client.app.router.routes():
        handler = getattr(route.handler, "__self__", None)
        if isinstance(handler, WeChatWebhook):
            return handler
    raise RuntimeError("POST /wechat is not mounted")


async def one_round(
    client: TestClient, settings: Settings, clock: SystemClock, rng: random.Random, count: int
) -> tuple[float, float]:
    """µs per message: wall, CPU."""
    requests = [
        signed_request(
            settings, openid_of(rng.randrange(MEMBERS)), rng.choice(TEXTS), unix_seconds(clock)
        )
        for _ in range(count)
    ]
    cpu, wall = time.process_time(), time.perf_counter()
    for query, body in requests:
        response = await client.post("/wechat", params=query, data=body.encode())
        if response.status != 200 or "<Content>" not in await response.text():
            raise RuntimeError(f"unexpected answer {response.status}")
    return (
        (time.perf_counter() - wall) / count * 1e6,
        (time.process_time() - cpu) / count * 1e6,
    )


async def measure(label: str, url: str, rounds: int, messages: int) -> list[list[str]]:
    await seed_qiyi(url)
    values: dict[str, object] = {"database_url": url, "wechat_token": TOKEN, "scheduler": "off"}
    settings = Settings(_env_file=None, **values)  # type: ignore[arg-type]
    clock = SystemClock(settings.zone)
    app = create_app(settings, clock, background=False)
    rng = random.Random(1)
    results: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    async with TestClient(TestServer(app)) as client:
        webhook = webhook_of(client)
        await one_round(client, settings, clock, rng, messages)  # warm-up
        for number in range(rounds * 2):
            remember = number % 2 == 0
            webhook.remember_pairs = remember
            results[remember].append(await one_round(client, settings, clock, rng, messages))
    rows = []
    medians = {}
    for remember in (False, True):
        wall = statistics.median(r[0] for r in results[remember])
        cpu = statistics.median(r[1] for r in results[remember])
        medians[remember] = (wall, cpu)
        name = "with nonce memory" if remember else "without"
        rows.append([label, name, f"{wall:,.0f}", f"{cpu:,.0f}"])
    extra_wall = medians[True][0] - medians[False][0]
    extra_cpu = medians[True][1] - medians[False][1]
    rows.append([label, "difference", f"{extra_wall:+,.0f}", f"{extra_cpu:+,.0f}"])
    return rows


async def run(rounds: int, messages: int, postgres: str | None) -> list[list[str]]:
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="qiyi-bench-") as folder:
        async with sqlite_database(Path(folder)) as url:
            rows += await measure("sqlite", url, rounds, messages)
    if postgres:
        async with postgres_database(postgres) as url:
            rows += await measure("postgresql", url, rounds, messages)
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook_nonces", description=__doc__)
    parser.add_argument("--rounds", type=int, default=8, help="rounds of each, alternating")
    parser.add_argument("--messages", type=int, default=300, help="messages per round")
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server to measure too")
    args = parser.parse_args(argv)
    rows = asyncio.run(run(args.rounds, args.messages, args.postgres))
    command = f"python -m bench.webhook_nonces --rounds {args.rounds} --messages {args.messages}"
    if args.postgres:
        command += f" --postgres {hidden(args.postgres)}"
    columns = ["database", "plain mode", "µs per message", "CPU µs"]
    tables.print_markdown(columns, rows, [f"command: {command}"], [])


if __name__ == "__main__":
    main()
