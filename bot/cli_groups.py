"""`qiyi groups`: which QQ group each branch posts its lessons and news to."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from bot.cli_runtime import database, out, run
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
    if not group_id.isdigit():
        out.print(f"[red]A QQ group number is digits only:[/red] {group_id}")
        raise typer.Exit(1)

    async def work(settings: Settings) -> None:
        async with database(settings) as engine, transaction(session_factory(engine)) as session:
            await groups.set_group(session, branch, CHANNEL, group_id)

    run(work)
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
