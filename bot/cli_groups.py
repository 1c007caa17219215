"""`qiyi groups`: which QQ group each branch posts its lessons and news to."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from bot.cli_runtime import cli_actor, database, err, out, run
from bot.clock import SystemClock
from bot.settings import Settings
from data import groups
from data.db import session_factory, transaction

groups_app = typer.Typer(help="Branch QQ groups (OneBot).", no_args_is_help=True)
CHANNEL = "qq"


@groups_app.command("set")
def groups_set(
    branch: Annotated[str, typer.Argument(help="The branch's name, as in the roster.")],
    group_id: Annotated[str, typer.Argument(help="The QQ group number.")],
) -> None:
    """Post the branch's lessons and news to this QQ group (replaces its previous group)."""
    if not groups.is_group_id(group_id):  # refused before the database is even opened
        err.print(f"A QQ group number is ASCII digits only (at most 18): {group_id!r}")
        raise typer.Exit(1)

    async def work(settings: Settings) -> None:
        now = SystemClock(settings.zone).now()
        async with database(settings) as engine, transaction(session_factory(engine)) as session:
            await groups.set_group(session, branch, CHANNEL, group_id, cli_actor(), now)

    try:
        run(work)
    except groups.GroupError as problem:
        err.print(str(problem))
        raise typer.Exit(1) from None
    out.print(f"{branch} → QQ group {group_id}")


@groups_app.command("list")
def groups_list() -> None:
    """The branches' groups."""

    async def work(settings: Settings) -> list[tuple[str, str, str]]:
        async with database(settings) as engine, session_factory(engine)() as session:
            return await groups.listing(session)

    table = Table("branch", "channel", "group")
    for row in run(work):
        table.add_row(*row)
    out.print(table)
