"""The audit log: every change staff make, in chat, console or CLI, as an append-only row."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.models import AuditEntry, Member

# A before/after snapshot is a few fields; this bounds what a bug could write.
SNAPSHOT_LIMIT = 4000


class Door(StrEnum):
    """Where a change came in."""

    CHAT = "chat"
    CONSOLE = "console"
    CLI = "cli"
    SYSTEM = "system"  # the server itself (a scheduled job)


@dataclass(frozen=True)
class Actor:
    """Who makes a change, and through which door and from where (a chat channel, an IP,
    the server's host for the CLI)."""

    door: Door
    label: str
    origin: str = ""
    member_id: int | None = None

    @classmethod
    def of_member(cls, member: Member, door: Door, origin: str) -> Actor:
        return cls(door, f"{member.name}（{member.roster_id}）", origin, member.id)


def _snapshot(values: Mapping[str, Any] | None) -> str:
    if not values:
        return ""
    text = json.dumps(values, ensure_ascii=False, sort_keys=True, default=str)
    return text[:SNAPSHOT_LIMIT]


async def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    *,
    object_type: str,
    object_id: object,
    branch_id: int | None,
    at: dt.datetime,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> None:
    """Append one audit row in the caller's transaction: it is kept exactly when the change
    it describes is."""
    session.add(
        AuditEntry(
            at=at,
            actor_id=actor.member_id,
            actor=actor.label[:120],
            door=actor.door.value,
            origin=actor.origin[:120],
            action=action,
            object_type=object_type,
            object_id=str(object_id)[:80],
            branch_id=branch_id,
            before=_snapshot(before),
            after=_snapshot(after),
        )
    )


async def entries(
    session: AsyncSession,
    *,
    branch_id: int | None = None,
    action: str | None = None,
    door: str | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> Sequence[AuditEntry]:
    """The newest entries first (of one branch, or all when `branch_id` is None), paged by
    id: pass the last id seen as `before_id` for the next page."""
    statement = select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(limit)
    if branch_id is not None:
        statement = statement.where(AuditEntry.branch_id == branch_id)
    if action is not None:
        statement = statement.where(AuditEntry.action == action)
    if door is not None:
        statement = statement.where(AuditEntry.door == door)
    if before_id is not None:
        statement = statement.where(col(AuditEntry.id) < before_id)
    return (await session.exec(statement)).all()
