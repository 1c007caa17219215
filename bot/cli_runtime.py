"""What every CLI command shares: the consoles, running a coroutine, a migrated database."""

from __future__ import annotations

import asyncio
import getpass
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import Settings, load_settings
from data import migrate
from data.audit import Actor, Door
from data.db import create_engine

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")


class CommandError(Exception):
    """An expected problem a command stops on: `bot.cli.main` prints the message as one line
    on stderr and exits with status 1."""


class NoDatabase(CommandError):
    """A command that needs the database's content found none (and created none)."""


def run(work: Callable[[Settings], Awaitable[T]], settings: Settings | None = None) -> T:
    return asyncio.run(work(settings or load_settings()))


def shown_url(url: str) -> str:
    """The database URL as it may be printed: without its password."""
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for PostgreSQL and an in-memory database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _no_database(where: str) -> NoDatabase:
    return NoDatabase(
        f"No Qiyi database at {where} (QIYI_DATABASE_URL): nothing to read yet."
        " `qiyi db upgrade` creates one, `qiyi members import FILE` fills it."
    )


def _has_schema(connection: Connection) -> bool:
    return inspect(connection).has_table("alembic_version")


@asynccontextmanager
async def database(settings: Settings, *, create: bool = False) -> AsyncIterator[AsyncEngine]:
    """The configured database, migrated to the latest schema, disposed at the end.

    Only a command that fills the database (`create=True`: `db upgrade`, `members import`,
    `content sync`, `serve`) may create it: any other stops with `NoDatabase` rather than
    leave an empty database file behind — a typo in QIYI_DATABASE_URL would otherwise show
    an empty roster as if it were the real one. A database that cannot be opened stops the
    command with one line naming QIYI_DATABASE_URL.
    """
    url = settings.database_url
    path = _sqlite_file(url)
    if not create and path is not None and not path.exists():
        raise _no_database(str(path.absolute()))  # before the engine would create the file
    engine = create_engine(url)
    try:
        try:
            if not create:
                async with engine.connect() as connection:
                    if not await connection.run_sync(_has_schema):
                        raise _no_database(shown_url(url))
            await migrate.upgrade(engine)
        except (OSError, DBAPIError) as problem:
            # DBAPIError: what the driver said (a database that does not exist, a wrong
            # password, a file that is not SQLite); OSError: nothing listens there.
            reason = str(getattr(problem, "orig", None) or problem).splitlines()[0]
            raise CommandError(
                f"Cannot open the database {shown_url(url)} (QIYI_DATABASE_URL): {reason}"
            ) from problem
        yield engine
    finally:
        await engine.dispose()


def cli_actor() -> Actor:
    """Who runs this command, for the audit log: `cli:<os user>@<host>`, from the host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container with a bare uid)
        user = f"uid{os.getuid()}"
    host = socket.gethostname()
    return Actor(Door.CLI, f"cli:{user}@{host}", host)
