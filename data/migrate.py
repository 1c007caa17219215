"""Alembic, driven from code so `qiyi db upgrade`, `serve` and the tests share it."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply migrations up to `revision` on the engine's database."""

    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


async def refresh_statistics(engine: AsyncEngine) -> None:
    """SQLite plans its queries well only with statistics (reports run twice as fast with
    them); PostgreSQL keeps its own through autovacuum."""
    if engine.dialect.name != "sqlite":
        return
    async with engine.begin() as connection:
        await connection.exec_driver_sql("ANALYZE")
