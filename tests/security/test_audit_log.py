"""The audit log is append-only: the database itself refuses to change or delete a row."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import delete, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import FixedClock
from data import audit
from data.db import session_factory, transaction
from data.models import AuditEntry

CLI = audit.Actor(audit.Door.CLI, "cli:root@server", "server")


async def _write(
    engine: AsyncEngine, clock: FixedClock, action: str, branch_id: int | None
) -> None:
    async with transaction(session_factory(engine)) as session:
        await audit.record(
            session,
            CLI,
            action,
            object_type="member",
            object_id=1001,
            branch_id=branch_id,
            at=clock.now(),
            before={"role": "member"},
            after={"role": "secretary", "名字": "张三"},
        )


async def test_entries_are_read_newest_first_and_by_branch(
    engine: AsyncEngine, clock: FixedClock
) -> None:
    await _write(engine, clock, "member.role", None)
    await _write(engine, clock, "member.unbind", None)
    async with session_factory(engine)() as session:
        rows = await audit.entries(session)
        assert [row.action for row in rows] == ["member.unbind", "member.role"]
        assert json.loads(rows[0].after) == {"role": "secretary", "名字": "张三"}
        assert rows[0].door == "cli" and rows[0].actor == "cli:root@server"
        older = await audit.entries(session, before_id=rows[0].id)
        assert [row.action for row in older] == ["member.role"]
        assert await audit.entries(session, action="member.role") == [rows[1]]


@pytest.mark.parametrize("change", ["update", "delete"])
async def test_the_database_refuses_to_change_an_entry(
    engine: AsyncEngine, clock: FixedClock, change: str
) -> None:
    await _write(engine, clock, "member.role", None)
    statement = (
        update(AuditEntry).values(action="nothing") if change == "update" else delete(AuditEntry)
    )
    with pytest.raises(DBAPIError, match="append-only"):
        async with transaction(session_factory(engine)) as session:
            await session.exec(statement)  # type: ignore[call-overload]
    async with session_factory(engine)() as session:
        assert [row.action for row in await audit.entries(session)] == ["member.role"]
