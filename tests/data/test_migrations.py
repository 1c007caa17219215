"""The migrations build exactly the schema the models describe, on every backend."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel, select

import data.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from data import migrate
from data.db import session_factory, transaction
from data.models import Branch


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


def _schema(connection: Connection) -> dict[str, Any]:
    """Tables with their columns, indexes and unique constraints, for before/after checks."""
    inspector = inspect(connection)
    return {
        table: (
            [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
            sorted(str(sorted(i.items())) for i in inspector.get_indexes(table)),
            sorted(str(sorted(u.items())) for u in inspector.get_unique_constraints(table)),
        )
        for table in sorted(inspector.get_table_names())
    }


def _head() -> str:
    head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    assert head is not None
    return head


async def _revision(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        rows = await connection.execute(text("SELECT version_num FROM alembic_version"))
        return [row[0] for row in rows]


async def test_migrated_database_matches_the_models(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        differences = await connection.run_sync(_differences)
    # A model changed without a migration (or the other way round) shows up here.
    assert differences == []
    async with engine.connect() as connection:
        tables = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    assert set(SQLModel.metadata.tables) <= tables
    assert await _revision(engine) == [_head()]


async def test_upgrading_twice_is_a_no_op(engine: AsyncEngine) -> None:
    async with transaction(session_factory(engine)) as session:
        session.add(Branch(name="第一党支部"))
    async with engine.connect() as connection:
        before = await connection.run_sync(_schema)

    await migrate.upgrade(engine)

    async with engine.connect() as connection:
        after = await connection.run_sync(_schema)
        differences = await connection.run_sync(_differences)
    assert after == before
    assert differences == []
    assert await _revision(engine) == [_head()]
    async with session_factory(engine)() as session:
        names = (await session.exec(select(Branch.name))).all()
        count = (await session.exec(select(func.count()).select_from(Branch))).one()
    assert list(names) == ["第一党支部"]
    assert count == 1
