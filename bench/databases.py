"""Throwaway databases for the benchmarks: a SQLite file or a PostgreSQL database."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine


async def admin(admin_url: str, statement: str) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE and VACUUM need that)."""
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def postgres_database(admin_url: str, prefix: str = "qiyi_bench") -> AsyncIterator[str]:
    """A throwaway database `<prefix>_<random>` on the server of `admin_url`, dropped
    afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    await admin(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with contextlib.suppress(Exception):
            await admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.asynccontextmanager
async def sqlite_database(folder: Path) -> AsyncIterator[str]:
    """A fresh SQLite file in `folder`, removed afterwards (with its WAL files)."""
    path = folder / f"qiyi-{uuid.uuid4().hex[:12]}.db"
    try:
        yield f"sqlite+aiosqlite:///{path}"
    finally:
        remove_sqlite_files(path)


def remove_sqlite_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def postgres_version(admin_url: str) -> str:
    engine = create_async_engine(admin_url)
    try:
        async with asyncio.timeout(10), engine.connect() as connection:
            return str((await connection.execute(text("SHOW server_version"))).scalar_one())
    finally:
        await engine.dispose()
