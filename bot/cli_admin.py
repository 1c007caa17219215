"""`qiyi admin`: the web console from the server's shell (bootstrap and rescue)."""

from __future__ import annotations

from typing import Annotated

import typer

from bot import signin
from bot.cli_runtime import cli_actor, database, err, out, run
from bot.clock import SystemClock
from bot.settings import Settings
from data import audit, members
from data.db import session_factory, transaction

admin_app = typer.Typer(help="The web console (管理后台).", no_args_is_help=True)
LOCAL_BASE = "http://127.0.0.1:8080"  # `qiyi serve`'s default address


@admin_app.command("link")
def admin_link(
    roster_id: Annotated[str, typer.Option("--as", help="The 工号 of a secretary or admin.")],
) -> None:
    """Print a one-time sign-in link (10 minutes, single use) for a secretary or admin."""

    async def work(settings: Settings) -> tuple[str | None, bool]:
        now = SystemClock(settings.zone).now()
        async with database(settings) as engine, transaction(session_factory(engine)) as session:
            member = await members.member_by_roster_id(session, roster_id)
            if member is None or not signin.may_use_console(member):
                return None, True
            token = await signin.issue_link(session, member, now)
            if token is None:
                return "", True
            await audit.record(
                session,
                cli_actor(),
                "console.link",
                object_type="member",
                object_id=member.roster_id,
                branch_id=member.branch_id,
                at=now,
            )
        return signin.link_url(settings.public_url, token, LOCAL_BASE), bool(settings.public_url)

    url, public = run(work)
    if url is None:
        err.print(f"No secretary or admin with 工号 {roster_id}: only they may use the console.")
        raise typer.Exit(1)
    if not url:
        err.print("Too many links asked for this member: try again in a few minutes.")
        raise typer.Exit(1)
    out.print(url, highlight=False)
    minutes = int(signin.LINK_LIFETIME.total_seconds() // 60)
    out.print(f"Open it within {minutes} minutes; it works once.", highlight=False)
    if not public:
        out.print(
            "QIYI_PUBLIC_URL is not set: the link uses this machine's address; set it to the"
            " console's public address (e.g. https://party.example.org).",
            highlight=False,
        )
