"""`qiyi media`: the materials' files — fetch the due and failed ones now, see the counts."""

from __future__ import annotations

import json
from typing import Annotated

import aiohttp
import typer
from rich.table import Table

from bot.app import wechat_api_for
from bot.channels import public_web
from bot.cli_runtime import database, out, run
from bot.clock import SystemClock
from bot.material_fetch import MaterialFetcher
from bot.settings import Settings
from data import material_files
from data.db import session_factory
from data.media.store import open_store

media_app = typer.Typer(help="Materials' files (资料) kept for good.", no_args_is_help=True)


async def fetch_now(settings: Settings) -> tuple[int, dict[str, int], dict[str, int]]:
    """Failed fetches pending again, then everything due fetched: (how many were retried,
    how this round ended, the counts by state afterwards)."""
    clock = SystemClock(settings.zone)
    async with database(settings) as engine:
        sessions = session_factory(engine)
        async with (
            aiohttp.ClientSession() as http,
            public_web.fetching_session(settings.media_fetch_private_ok) as web,
        ):
            store = open_store(settings.media_dir, settings.media_s3_url)
            wechat = wechat_api_for(settings, http, sessions, clock)
            fetcher = MaterialFetcher(settings, clock, sessions, store, web, wechat)
            again = await fetcher.retry_failed()
            done = await fetcher.run_once()
        async with sessions() as session:
            counts = await material_files.counts(session)
    return again, dict(done), counts


@media_app.command("fetch")
def media_fetch(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Retry every failed fetch now and fetch what is due (the nightly job retries the
    last 3 days' failures by itself)."""
    again, done, counts = run(fetch_now)
    if as_json:
        out.print_json(json.dumps({"retried": again, "fetched": done, "states": counts}))
        return
    out.print(f"retried {again} failed fetch(es); this round: {done or 'nothing due'}")
    table = Table("state", "files")
    for state, count in sorted(counts.items()):
        table.add_row(state, str(count))
    out.print(table)
