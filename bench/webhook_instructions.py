"""Instructions a WeChat message costs, counted by callgrind: a figure a busy machine does not
change (times do), for comparing two versions of the message path.

Signed plain messages of the webhook mix (50% `学习 N`, 20% `今日`, 20% `积分`, 10% unknown
text) from the 1,000 bound members of bench/webhook.py are posted one after another to the
server in this process (`create_app` behind aiohttp's test client on loopback; every reply is
checked). Under `valgrind --tool=callgrind` the whole process is counted, start-up and
seeding included, so it runs twice, with `--small` and `--large` messages after the same 50
warm-up ones, and the difference over the extra messages is the cost of one (the client's
side included). Hash seeds are fixed and the .pyc files written first, so the two runs differ
only by the messages.

    apt-get install valgrind
    .venv/bin/python -m bench.webhook_instructions               # ~10 minutes
    .venv/bin/python -m bench.webhook_instructions --messages 20 # one uncounted run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from bench.databases import sqlite_database
from bench.webhook import MEMBERS, TOKEN, UNKNOWN_TEXTS, openid_of, seed_qiyi
from bot.app import create_app
from bot.channels.wechat_sample import signed_request
from bot.clock import SystemClock, unix_seconds
from bot.settings import Settings

WARM_UP = 50


def text_of(rng: random.Random) -> str:
    draw = rng.random()
    if draw < 0.5:
        return f"学习 {rng.randint(1, 5)}"
    if draw < 0.7:
        return "今日"
    if draw < 0.9:
        return "积分"
    return rng.choice(UNKNOWN_TEXTS)


async def post_messages(count: int) -> None:
    """Seed a database, then post WARM_UP + `count` messages and check every reply."""
    with tempfile.TemporaryDirectory(prefix="qiyi-bench-") as folder:
        async with sqlite_database(Path(folder)) as url:
            await seed_qiyi(url)
            values: dict[str, object] = {
                "database_url": url,
                "wechat_token": TOKEN,
                "scheduler": "off",
            }
            settings = Settings(_env_file=None, **values)  # type: ignore[arg-type]
            clock = SystemClock(settings.zone)
            app = create_app(settings, clock, background=False)
            rng = random.Random(1)
            async with TestClient(TestServer(app)) as client:
                for _ in range(WARM_UP + count):
                    openid = openid_of(rng.randrange(MEMBERS))
                    query, body = signed_request(
                        settings, openid, text_of(rng), unix_seconds(clock)
                    )
                    response = await client.post("/wechat", params=query, data=body.encode())
                    if response.status != 200 or "<Content>" not in await response.text():
                        raise SystemExit(f"unexpected answer {response.status}")


def counted(messages: int) -> int:
    """Instructions of a whole run of this module with `messages`, under callgrind."""
    with tempfile.TemporaryDirectory(prefix="qiyi-callgrind-") as folder:
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={folder}/out",
            sys.executable,
            "-m",
            "bench.webhook_instructions",
            "--messages",
            str(messages),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=True, env=_env())
    found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"callgrind printed no count:\n{done.stderr[-2000:]}")
    return int(found[1])


def _env() -> dict[str, str]:
    return os.environ | {"PYTHONHASHSEED": "0"}


def per_message(small: int, large: int, small_count: int, large_count: int) -> float:
    return (large - small) / (large_count - small_count)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.webhook_instructions", description=__doc__
    )
    parser.add_argument("--messages", type=int, help="post this many, uncounted, and stop")
    parser.add_argument("--small", type=int, default=50, help="messages of the first run (50)")
    parser.add_argument("--large", type=int, default=250, help="messages of the second (250)")
    args = parser.parse_args(argv)
    if args.messages is not None:
        asyncio.run(post_messages(args.messages))
        return
    subprocess.run([sys.executable, "-m", "bench.webhook_instructions", "--messages", "1"],
                   check=True, env=_env())  # fmt: skip  # .pyc files written, not counted
    small, large = counted(args.small), counted(args.large)
    cost = per_message(small, large, args.small, args.large)
    print(f"instructions: {small:,} ({args.small} messages), {large:,} ({args.large})")
    print(f"per message: {cost:,.0f} instructions (plain mode, SQLite, the webhook mix)")


if __name__ == "__main__":
    main()
