"""What every CLI command shares: the consoles, running a coroutine, a migrated database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import Settings, load_settings
from data import migrate
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
