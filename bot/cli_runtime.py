"""What every CLI command shares: the consoles, running a coroutine, a migrated database."""

from __future__ import annotations

import asyncio
import getpass
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import Settings, load_settings
from data import migrate
from data.audit import Actor, Door
from data.db import create_engine

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")


def run(work: Callable[[Settings], Awaitable[T]], settings: Settings | None = None) -> T:
    return asyncio.run(work(settings or load_settings()))


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The configured database, migrated to the latest schema, disposed at the end."""
    engine = create_engine(settings.database_url)
    try:
        await migrate.upgrade(engine)
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
