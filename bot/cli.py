"""`qiyi`: the command line. Each command is a thin call into what the server uses."""

from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import aiohttp
import typer
from aiohttp import web
from rich.markup import escape
from rich.table import Table

from bot.app import build_conversation, create_app
from bot.channels import console as console_channel
from bot.channels import wechat_api, wechat_menu
from bot.channels.wechat_sample import curl_command, signed_request
from bot.cli_groups import groups_app
from bot.cli_pushes import jobs_app, outbox_app, push
from bot.cli_reports import report_app
from bot.cli_runtime import CommandError, database, err, out, run
from bot.clock import SystemClock, unix_seconds
from bot.roster import RosterError, read_roster
from bot.settings import ConfigError, Settings, load_settings
from content.library import ContentError, read_all
from data import articles, members
from data.db import session_factory, transaction

app = typer.Typer(help="Qiyi: the membership organisation's chatbot.", no_args_is_help=True)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
members_app = typer.Typer(help="The member roster.", no_args_is_help=True)
content_app = typer.Typer(help="Micro-lessons and micro-news.", no_args_is_help=True)
wechat_app = typer.Typer(help="The WeChat Official Account.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(members_app, name="members")
app.add_typer(content_app, name="content")
app.add_typer(wechat_app, name="wechat")
app.command("push")(push)
app.add_typer(jobs_app, name="jobs")
app.add_typer(outbox_app, name="outbox")
app.add_typer(groups_app, name="groups")
app.add_typer(report_app, name="report")


class Options:
    """The global options, set before the command runs, read by `main()` after it."""

    debug = False


@app.callback()
def options(
    debug: Annotated[
        bool, typer.Option("--debug", help="On an error, show the full traceback.")
    ] = False,
) -> None:
    """Qiyi: the membership organisation's chatbot."""
    Options.debug = debug


def _serve(settings: Settings, host: str, port: int) -> None:
    server = create_app(settings)  # a configuration error stops here, before anything prints
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    out.print(f"Qiyi listening on http://{host}:{port} (WeChat webhook at /wechat)")
    access = {} if settings.access_log else {"access_log": None}  # as gunicorn's default
    web.run_app(server, host=host, port=port, print=None, **access)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    workers: Annotated[
        int, typer.Option(min=1, help="Processes sharing the port (PostgreSQL only).")
    ] = 1,
) -> None:
    """Run the server (applies pending migrations first)."""
    settings = load_settings()
    if workers == 1:
        _serve(settings, host, port)
        return
    from bot import workers as processes

    processes.check(settings, workers)
    settings.require_a_channel()

    async def migrate_once(settings: Settings) -> None:
        async with database(settings, create=True):
            pass

    run(migrate_once, settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    out.print(f"Qiyi: {workers} workers on http://{host}:{port}")
    processes.run(host, port, workers, access_log=settings.access_log)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations."""

    async def work(settings: Settings) -> None:
        async with database(settings, create=True):
            pass

    run(work)
    out.print("Database is up to date.")


@members_app.command("import")
def members_import(file: Path) -> None:
    """Add or update members from a CSV/XLSX file (header member_id,name,branch,role)."""
    try:
        rows = read_roster(file)
    except RosterError as problem:
        err.print(f"[red]Rejected {file}[/red]: {problem}. Nothing was imported.")
        raise typer.Exit(1) from None

    async def work(settings: Settings) -> tuple[int, int]:
        now = SystemClock(settings.zone).now()
        async with (
            database(settings, create=True) as engine,
            transaction(session_factory(engine)) as session,
        ):
            return await members.upsert_roster(session, rows, now)

    added, updated = run(work)
    out.print(f"Imported {len(rows)} members: {added} added, {updated} updated.")


@members_app.command("list")
def members_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the roster with each member's bound channels."""

    async def work(settings: Settings) -> list[members.MemberListing]:
        async with database(settings) as engine, session_factory(engine)() as session:
            return await members.list_members(session)

    listing = run(work)
    if as_json:
        print(json.dumps([asdict(row) for row in listing], ensure_ascii=False, indent=2))
        return
    table = Table("member_id", "name", "branch", "role", "bound on")
    for row in listing:
        table.add_row(row.member_id, row.name, row.branch, row.role, row.channels or "-")
    out.print(table)


@content_app.command("sync")
def content_sync(
    folder: Annotated[Path | None, typer.Option(help="Content folder (default: shipped).")] = None,
) -> None:
    """Load the lessons and news files into the database (update by slug)."""
    try:
        found = read_all(folder) if folder else read_all()
    except ContentError as problem:
        err.print(f"[red]Content rejected[/red]: {problem}")
        raise typer.Exit(1) from None

    async def work(settings: Settings) -> tuple[int, int]:
        async with (
            database(settings, create=True) as engine,
            transaction(session_factory(engine)) as session,
        ):
            return await articles.upsert(session, found)

    added, updated = run(work)
    out.print(f"Content synced: {added} added, {updated} updated.")


@app.command()
def chat(member_id: Annotated[str, typer.Option("--as", help="The member's member_id.")]) -> None:
    """Talk to the bot as a member, in this terminal (empty line ignored, 退出 to leave)."""

    async def work(settings: Settings) -> None:
        async with database(settings) as engine:
            conversation = build_conversation(settings, SystemClock(settings.zone), engine)
            try:
                sender = await console_channel.open_as(conversation, member_id)
            except console_channel.UnknownMember:
                err.print(f"[red]No member with member_id {member_id}[/red] (qiyi members list)")
                raise typer.Exit(1) from None
            interactive = sys.stdin.isatty()
            if interactive:
                out.print("Type a message (帮助 for the commands, 退出 to leave).")

            def read() -> str | None:
                try:
                    return input("> " if interactive else "")
                except EOFError:
                    return None

            def write(reply: str) -> None:
                out.print(reply, markup=False, highlight=False)
                out.print()

            await console_channel.repl(conversation, sender, read, write)

    run(work)


@wechat_app.command("menu")
def wechat_menu_command(
    push: Annotated[bool, typer.Option("--push", help="Install it on the account.")] = False,
) -> None:
    """Print the custom menu (content/menu.toml) as the platform's JSON; --push installs it."""
    menu = wechat_menu.platform_json(wechat_menu.load())
    print(json.dumps(menu, ensure_ascii=False, indent=2))
    if not push:
        return

    async def work(settings: Settings) -> None:
        settings.require_wechat_api()
        assert settings.wechat_appid and settings.wechat_secret
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
            base = settings.wechat_api_base
            token, _ = await wechat_api.stable_token(
                http, base, settings.wechat_appid, settings.wechat_secret
            )
            await wechat_api.create_menu(http, base, token, menu)

    try:
        run(work)
    except (wechat_api.WeChatApiError, wechat_api.TransientError) as problem:
        err.print(f"[red]Menu not installed[/red]: {problem}")
        raise typer.Exit(1) from None
    out.print("Menu installed.")


@wechat_app.command("sample")
def wechat_sample(
    text: Annotated[str, typer.Option(help="The message text.")] = "学习 30",
    openid: Annotated[str, typer.Option(help="The sender's openid.")] = "o_demo_member_1001",
    url: Annotated[str, typer.Option(help="The server's base URL.")] = "http://127.0.0.1:8080",
) -> None:
    """Print a curl command with a correctly signed (and, in safe mode, encrypted) message."""
    settings = load_settings()
    settings.require_wechat()
    query, body = signed_request(settings, openid, text, unix_seconds(SystemClock(settings.zone)))
    print(curl_command(url, query, body))


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
) -> None:
    """Serve a throwaway database with a sample roster and content (removed when it stops)."""
    from bot import demo as sample

    folder = Path(tempfile.mkdtemp(prefix="qiyi-demo-"))
    try:  # the folder goes however the demo ends: Ctrl+C, SIGTERM, an error
        url = f"sqlite+aiosqlite:///{folder / 'demo.db'}"
        settings = load_settings(database_url=url, wechat_token=sample.TOKEN)
        clock = SystemClock(settings.zone)

        async def work(settings: Settings) -> None:
            async with database(settings, create=True) as engine:
                await sample.seed(session_factory(engine), clock.now())

        run(work, settings)
        server = f"http://{host}:{port}"
        query, body = signed_request(settings, sample.OPENID, "学习 30", unix_seconds(clock))
        curl = curl_command(server, query, body)
        program = sample.invocation()
        for line in sample.instructions(str(folder / "demo.db"), url, program, curl, server):
            out.print(line, markup=False, highlight=False)
        _serve(settings, host, port)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# Problems the person at the keyboard can fix: told as one line, without a traceback.
EXPECTED: tuple[type[Exception], ...] = (
    CommandError,
    RosterError,
    ContentError,
    wechat_api.WeChatApiError,
    wechat_api.TransientError,
    OSError,  # a file not found or not writable, a port in use
)


def _one_line(problem: Exception) -> int:
    """Tell the problem as one line on stderr; the exit status for it."""
    text = escape((str(problem).strip().splitlines() or [type(problem).__name__])[0])
    if isinstance(problem, ConfigError):
        err.print(f"[red]Configuration error[/red]: {text}", highlight=False)
        return 2
    if isinstance(problem, CommandError):
        err.print(f"[red]{text}[/red]", highlight=False)
    elif isinstance(problem, EXPECTED):
        err.print(f"[red]Error[/red]: {text}", highlight=False)
    else:  # a bug: the traceback is what its report needs
        err.print(
            f"[red]Unexpected error[/red]: {type(problem).__name__}: {text}"
            " (run it again as `qiyi --debug …` for the traceback)",
            highlight=False,
        )
    return 1


def main() -> None:
    """The `qiyi` program. Every error ends it with one line on stderr and a non-zero exit
    status (2 for a setting, 1 otherwise); `qiyi --debug …` shows the traceback instead."""
    Options.debug = False
    try:
        app()
    except Exception as problem:
        if Options.debug:
            raise
        sys.exit(_one_line(problem))
