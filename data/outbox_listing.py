"""The outbox as people read it (`qiyi outbox list`): each push with its member's 工号 and
name, not only the internal member id."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.models import Member, OutboxItem, OutboxState


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
