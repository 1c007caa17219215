"""Notices kept for a member until their next message (review results, missed pushes)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import ColumnElement, exists, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.models import MailboxItem, OutboxItem, OutboxState


def anything_waiting(member_id: ColumnElement[int]) -> ColumnElement[bool]:
    """Whether the member has open notices or pending pushes: a cheap column of the first
    query of every message (`data.members.sender_state`), so that a reply with nothing to
    fold in (most replies) loads neither."""
    notices = select(MailboxItem.id).where(
        col(MailboxItem.member_id) == member_id, col(MailboxItem.delivered_at).is_(None)
    )
    pushes = select(OutboxItem.id).where(
        col(OutboxItem.member_id) == member_id, OutboxItem.state == OutboxState.PENDING.value
    )
    return or_(exists(notices), exists(pushes))


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
