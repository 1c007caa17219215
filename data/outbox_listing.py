"""The outbox as people read it (`qiyi outbox list`, the console's 推送 page): each push
with its member's 工号 and name, not only the internal member id, and its tries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data import directory
from data.models import DeliveryAttempt, Member, OutboxItem, OutboxState


async def with_members(
    session: AsyncSession, state: OutboxState | None, limit: int
) -> Sequence[tuple[OutboxItem, str, str]]:
    """(push, the member's roster id, name), newest first, of `state` if given."""
    statement = (
        select(OutboxItem, Member.roster_id, Member.name)
        .join(Member, col(Member.id) == col(OutboxItem.member_id))
        .order_by(col(OutboxItem.id).desc())
        .limit(limit)
    )
    if state is not None:
        statement = statement.where(OutboxItem.state == state.value)
    return [(item, roster_id, name) for item, roster_id, name in await session.exec(statement)]


@dataclass(frozen=True)
class Query:
    """The console's filters; `before` pages by id (newest first)."""

    state: str | None = None
    kind: str | None = None
    member: str = ""  # a 工号 or a name, or part of one
    day: dt.date | None = None
    before: int | None = None


PAGE_SIZE = 50


async def page(
    session: AsyncSession, query: Query, scope: int | None
) -> list[tuple[OutboxItem, str, str]]:
    """One page of pushes with their member's 工号 and name, newest first, of the members
    of branch `scope` (None: every branch)."""
    statement = select(OutboxItem, Member.roster_id, Member.name).join(
        Member, col(Member.id) == col(OutboxItem.member_id)
    )
    if scope is not None:
        statement = statement.where(Member.branch_id == scope)
    if query.state:
        statement = statement.where(OutboxItem.state == query.state)
    if query.kind:
        statement = statement.where(OutboxItem.kind == query.kind)
    if query.member:
        statement = statement.where(directory.matching(query.member))
    if query.day is not None:
        statement = statement.where(OutboxItem.day == query.day)
    if query.before is not None:
        statement = statement.where(col(OutboxItem.id) < query.before)
    statement = statement.order_by(col(OutboxItem.id).desc()).limit(PAGE_SIZE)
    return [(item, roster_id, name) for item, roster_id, name in await session.exec(statement)]


async def attempts_of(
    session: AsyncSession, item_ids: Sequence[int]
) -> dict[int, list[DeliveryAttempt]]:
    """Every try of these pushes, oldest first, by push."""
    found: dict[int, list[DeliveryAttempt]] = {item_id: [] for item_id in item_ids}
    if not item_ids:
        return found
    statement = (
        select(DeliveryAttempt)
        .where(col(DeliveryAttempt.outbox_id).in_(item_ids))
        .order_by(col(DeliveryAttempt.id))
    )
    for attempt in await session.exec(statement):
        found[attempt.outbox_id].append(attempt)
    return found


async def in_scope(session: AsyncSession, item_ids: Sequence[int], scope: int | None) -> list[int]:
    """Those of the ids that are failed pushes of members of branch `scope` (None: any)."""
    statement = (
        select(OutboxItem.id)
        .join(Member, col(Member.id) == col(OutboxItem.member_id))
        .where(col(OutboxItem.id).in_(item_ids), OutboxItem.state == OutboxState.FAILED.value)
    )
    if scope is not None:
        statement = statement.where(Member.branch_id == scope)
    return [int(item_id) for item_id in await session.exec(statement) if item_id is not None]
