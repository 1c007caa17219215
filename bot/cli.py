"""`qiyi`: the command line. Each command is a thin call into what the server uses."""

from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated

import aiohttp
import typer
from aiohttp import web
from rich.markup import escape
from rich.table import Table
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import invitation_sheet, ladder, membership
from bot.app import build_conversation, create_app
from bot.channel_names import channels_named
from bot.channels import console as console_channel
from bot.channels import wechat_api, wechat_menu
from bot.channels.wechat_sample import curl_command, signed_request
from bot.cli_admin import admin_app
from bot.cli_groups import groups_app
from bot.cli_media import media_app
from bot.cli_months import month_app
from bot.cli_pushes import jobs_app, outbox_app, push
from bot.cli_reports import report_app
from bot.cli_runtime import CommandError, cli_actor, database, err, out, run
from bot.cli_wecom import wecom_app
from bot.clock import SystemClock, today, unix_seconds
from bot.roster import ROLE_ALIASES, RosterError, english, read_roster
from bot.settings import ConfigError, Settings, load_settings
from content.library import ContentError, read_all
from data import articles, members
from data.db import session_factory, transaction
from data.models import Member, Role

app = typer.Typer(help="Qiyi: the membership organisation's chatbot.", no_args_is_help=True)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
members_app = typer.Typer(help="The member roster.", no_args_is_help=True)
content_app = typer.Typer(help="Micro-lessons and micro-news.", no_args_is_help=True)
wechat_app = typer.Typer(help="The WeChat Official Account.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(members_app, name="members")
app.add_typer(content_app, name="content")
app.add_typer(wechat_app, name="wechat")
app.add_typer(wecom_app, name="wecom")
app.command("push")(push)
app.add_typer(jobs_app, name="jobs")
app.add_typer(outbox_app, name="outbox")
app.add_typer(groups_app, name="groups")
app.add_typer(report_app, name="report")
app.add_typer(admin_app, name="admin")
app.add_typer(media_app, name="media")
app.add_typer(month_app, name="month")


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
def members_import(
    file: Path,
    mark_left: Annotated[
        bool, typer.Option("--mark-left", help="Mark the members not in the file as left today.")
    ] = False,
) -> None:
    """Add or update members from a CSV/XLSX file (header member_id,name,branch,role[,phone])."""
    try:
        rows = read_roster(file)
    except RosterError as rejected:
        _print_problems(file, rejected)
        raise typer.Exit(1) from None

    async def work(settings: Settings) -> members.RosterImport:
        clock = SystemClock(settings.zone)
        left_on = today(clock) if mark_left else None
        async with (
            database(settings, create=True) as engine,
            transaction(session_factory(engine)) as session,
        ):
            return await membership.import_roster(session, cli_actor(), rows, clock.now(), left_on)

    result = run(work)
    out.print(f"Imported {len(rows)} members: {result.added} added, {result.updated} updated.")
    if result.absent:
        absent = ", ".join(f"{member.roster_id} {member.name}" for member in result.absent)
        if mark_left:
            out.print(f"Marked left, not in the file ({len(result.absent)}): {absent}")
        else:
            out.print(f"Not in the file ({len(result.absent)}): {absent}")
            out.print("To mark them left: --mark-left, or qiyi members leave MEMBER_ID.")


PROBLEMS_PRINTED = 50  # a file wrong on every line would scroll its start away


def _print_problems(file: Path, rejected: RosterError) -> None:
    problems = rejected.problems
    err.print(f"[red]Rejected {escape(str(file))}[/red]: {len(problems)} problem(s).")
    for problem in problems[:PROBLEMS_PRINTED]:
        err.print(f"  {escape(english(problem))}")
    if len(problems) > PROBLEMS_PRINTED:
        err.print(f"  … and {len(problems) - PROBLEMS_PRINTED} more")
    err.print("Nothing was imported.")


async def _member_or_exit(session: AsyncSession, roster_id: str) -> Member:
    member = await members.member_by_roster_id(session, roster_id)
    if member is None:
        err.print(f"[red]No member with member_id {roster_id}[/red] (qiyi members list)")
        raise typer.Exit(1)
    return member


@members_app.command("invite")
def members_invite(
    out_file: Annotated[Path, typer.Option("--out", help="The workbook to write (.xlsx).")],
    branch: Annotated[str | None, typer.Option(help="Only this branch's members.")] = None,
    member: Annotated[
        list[str] | None, typer.Option("--member", help="Only this member_id (repeatable).")
    ] = None,
) -> None:
    """Issue one-time binding codes (replacing earlier ones) and write them to a workbook."""
    if out_file.suffix.lower() != ".xlsx":
        err.print(f"[red]{out_file}[/red]: the codes are written to an .xlsx workbook.")
        raise typer.Exit(1)
    wanted = member or []

    async def work(settings: Settings) -> int:
        now = SystemClock(settings.zone).now()
        async with database(settings) as engine, transaction(session_factory(engine)) as session:
            chosen = await members.current_members(session, branch, wanted)
            missing = sorted(set(wanted) - {found.roster_id for found, _ in chosen})
            if missing or not chosen:
                what = ", ".join(missing) if missing else "the selection"
                err.print(f"[red]No current member for {what}[/red]. No code was issued.")
                raise typer.Exit(1)
            issued = await membership.issue_invitations(session, cli_actor(), chosen, now)
            # Written before the commit: codes nobody could hand out are not issued.
            invitation_sheet.write(out_file, issued)
            return len(issued)

    count = run(work)
    out.print(f"Issued {count} invitation codes into {out_file}; earlier codes no longer work.")


@members_app.command("unbind")
def members_unbind(
    member_id: str,
    channel: Annotated[
        str | None, typer.Option(help="Only this channel (微信, QQ, wechat, qqbot…).")
    ] = None,
) -> None:
    """End a member's chat bindings (all, or on one channel)."""
    channels = channels_named(channel) if channel is not None else None
    if channel is not None and channels is None:
        err.print(f"[red]Unknown channel {channel!r}[/red] (微信, QQ, wechat, qq, qqbot…)")
        raise typer.Exit(1)

    async def work(settings: Settings) -> list[str]:
        now = SystemClock(settings.zone).now()
        async with database(settings) as engine, transaction(session_factory(engine)) as session:
            found = await _member_or_exit(session, member_id)
            return await membership.unbind(session, cli_actor(), found, now, channels)

    ended = run(work)
    out.print(f"Unbound {member_id} on: {', '.join(ended)}." if ended else "Nothing was bound.")


@members_app.command("set-role")
def members_set_role(member_id: str, role: str) -> None:
    """Give a member the role member, secretary or admin (or 党员, 书记, 管理员)."""
    value = ROLE_ALIASES.get(role, role.lower())
    if value not in {r.value for r in Role}:
        err.print(f"[red]Unknown role {role!r}[/red]: member, secretary or admin.")
        raise typer.Exit(1)

    async def work(settings: Settings) -> bool:
        now = SystemClock(settings.zone).now()
        async with database(settings) as engine, transaction(session_factory(engine)) as session:
            found = await _member_or_exit(session, member_id)
            try:
                return await membership.set_role(session, cli_actor(), found, Role(value), now)
            except membership.MemberLeft:
                err.print(f"[red]{member_id} has left[/red] (qiyi members leave --undo first).")
                raise typer.Exit(1) from None

    changed = run(work)
    out.print(f"{member_id} is now {value}." if changed else f"{member_id} was {value} already.")


@members_app.command("leave")
def members_leave(
    member_id: str,
    on: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="The day (default today).")
    ] = None,
    undo: Annotated[bool, typer.Option("--undo", help="The member did not leave.")] = False,
) -> None:
    """Mark a member as left: history kept, role member, bindings ended, code withdrawn."""

    async def work(settings: Settings) -> bool:
        clock = SystemClock(settings.zone)
        now = clock.now()
        async with database(settings) as engine, transaction(session_factory(engine)) as session:
            found = await _member_or_exit(session, member_id)
            if undo:
                return await membership.undo_leave(session, cli_actor(), found, now)
            day = on.date() if on else today(clock)
            return await membership.leave(session, cli_actor(), found, day, now)

    changed = run(work)
    if undo:
        out.print(f"{member_id} is a member again." if changed else f"{member_id} had not left.")
    else:
        out.print(f"{member_id} marked as left." if changed else f"{member_id} had left already.")


@members_app.command("list")
def members_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the roster with each member's bound channels and the rungs a push reaches them
    by now (the delivery ladder, in the configured order)."""

    async def work(
        settings: Settings,
    ) -> tuple[list[members.MemberListing], dict[str, list[ladder.Rung]]]:
        async with database(settings) as engine, session_factory(engine)() as session:
            listing = await members.list_members(session)
            bound = await members.bindings_by_roster_id(session)
        now = SystemClock(settings.zone).now()
        rungs = {
            row.member_id: ladder.reachable_rungs(settings, bound.get(row.member_id, []), now)
            for row in listing
            if not row.left_on
        }
        return listing, rungs

    listing, rungs = run(work)
    if as_json:
        rows = [asdict(row) | {"rungs": list(rungs.get(row.member_id, []))} for row in listing]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table("member_id", "name", "branch", "role", "bound on", "reached by", "left on")
    for row in listing:
        channels, left = row.channels or "-", row.left_on or "-"
        reached = ladder.rung_names(rungs[row.member_id]) if row.member_id in rungs else "-"
        table.add_row(row.member_id, row.name, row.branch, row.role, channels, reached, left)
    out.print(table)


@content_app.command("sync")
def content_sync(
    folder: Annotated[Path | None, typer.Option(help="Content folder (default: shipped).")] = None,
) -> None:
    """Load the lessons and news files into the database (update by slug; an item edited in
    the console is left as it is and named)."""
    try:
        found = read_all(folder) if folder else read_all()
    except ContentError as problem:
        err.print(f"[red]Content rejected[/red]: {problem}")
        raise typer.Exit(1) from None

    async def work(settings: Settings) -> articles.Synced:
        async with (
            database(settings, create=True) as engine,
            transaction(session_factory(engine)) as session,
        ):
            return await articles.upsert(session, found)

    synced = run(work)
    out.print(f"Content synced: {synced.added} added, {synced.updated} updated.")
    if synced.skipped:
        out.print(
            f"Skipped, edited in the console since ({len(synced.skipped)}):"
            f" {', '.join(synced.skipped)}"
        )


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

        server = f"http://{host}:{port}"

        async def work(settings: Settings) -> str:
            async with database(settings, create=True) as engine:
                await sample.seed(session_factory(engine), clock.now())
                return await sample.console_link(session_factory(engine), clock.now(), server)

        link = run(work, settings)
        query, body = signed_request(settings, sample.OPENID, "学习 30", unix_seconds(clock))
        curl = curl_command(server, query, body)
        program = sample.invocation()
        lines = sample.instructions(str(folder / "demo.db"), url, program, curl, server, link)
        for line in lines:
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
