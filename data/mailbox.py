"""Notices kept for a member until their next message (review results, missed pushes)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import bindparam, exists, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.db import run
from data.models import MailboxItem, OutboxItem, OutboxState

_NOTICES = select(MailboxItem.id).where(
    col(MailboxItem.member_id) == bindparam("member_id"), col(MailboxItem.delivered_at).is_(None)
)
_PUSHES = select(OutboxItem.id).where(
    col(OutboxItem.member_id) == bindparam("member_id"),
    OutboxItem.state == OutboxState.PENDING.value,
)
_ANYTHING_WAITING = select(or_(exists(_NOTICES), exists(_PUSHES)))


async def anything_waiting(session: AsyncSession, member_id: int) -> bool:
    """Whether the member has open notices or pending pushes: one cheap query, so that a
    reply with nothing to fold in (most replies) does not load either."""
    return bool((await run(session, _ANYTHING_WAITING, {"member_id": member_id})).scalar_one())


async def open_items(session: AsyncSession, member_id: int) -> list[MailboxItem]:
    """The member's undelivered notices, oldest first."""
    statement = (
        select(MailboxItem)
        .where(MailboxItem.member_id == member_id, col(MailboxItem.delivered_at).is_(None))
        .order_by(col(MailboxItem.id))
    )
    return list(await session.exec(statement))


def mark_delivered(session: AsyncSession, items: Sequence[MailboxItem], at: dt.datetime) -> None:
    for item in items:
        item.delivered_at = at
        session.add(item)
