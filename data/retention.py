"""What the nightly clean-up forgets: rows that only grow, once they are of no more use.

Each function deletes one batch (`limit` rows, oldest first) in the caller's transaction and
says how many; the job calls it again until a batch comes back short. Audit rows are never
deleted (the database refuses it anyway), nor pushes that are not done (pending, sending).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.db import run
from data.models import (
    BindFailure,
    DeliveryAttempt,
    GroupPost,
    MailboxItem,
    OutboxItem,
    OutboxState,
    RosterDraft,
    Throttle,
)
from data.wecom_quota import SCOPE as WECOM_SENDS

PRUNE_BATCH = 5_000  # rows deleted per transaction: writers wait for one batch at most

# A push in one of these states is finished: nothing will send it again (`qiyi outbox retry`
# takes failed ones back, which is why the oldest are locked before they are deleted).
DONE = [
    OutboxState.SENT.value,
    OutboxState.FALLBACK.value,
    OutboxState.MAILBOX.value,
    OutboxState.SKIPPED.value,
    OutboxState.FAILED.value,
]


def _deleted(result: object) -> int:
    return int(result.rowcount)  # type: ignore[attr-defined]


async def forget_bind_failures(session: AsyncSession, before: dt.datetime, limit: int) -> int:
    """Failed `绑定` attempts made before `before` (they only throttle for minutes)."""
    oldest = (
        select(BindFailure.id)
        .where(col(BindFailure.at) < before)
        .order_by(col(BindFailure.id))
        .limit(limit)
    )
    result = await run(session, delete(BindFailure).where(col(BindFailure.id).in_(oldest)))
    return _deleted(result)


async def forget_delivered(session: AsyncSession, before: dt.datetime, limit: int) -> int:
    """Pushes done before `before`, with their delivery attempts (which refer to them)."""
    oldest = (
        select(OutboxItem.id)
        .where(col(OutboxItem.state).in_(DONE), col(OutboxItem.done_at) < before)
        .order_by(col(OutboxItem.id))
        .limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite has one writer anyway
    )
    ids: Sequence[int] = (await run(session, oldest)).scalars().all()
    if not ids:
        return 0
    await run(session, delete(DeliveryAttempt).where(col(DeliveryAttempt.outbox_id).in_(ids)))
    await run(session, delete(OutboxItem).where(col(OutboxItem.id).in_(ids)))
    return len(ids)


async def forget_posted(session: AsyncSession, before: dt.datetime, limit: int) -> int:
    """Group posts done before `before` (the groups' outbox)."""
    oldest = (
        select(GroupPost.id)
        .where(col(GroupPost.state).in_(DONE), col(GroupPost.done_at) < before)
        .order_by(col(GroupPost.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids: Sequence[int] = (await run(session, oldest)).scalars().all()
    if not ids:
        return 0
    await run(session, delete(GroupPost).where(col(GroupPost.id).in_(ids)))
    return len(ids)


async def forget_shown_notices(session: AsyncSession, before: dt.datetime, limit: int) -> int:
    """Mailbox notices shown to the member before `before`; waiting ones are kept."""
    oldest = (
        select(MailboxItem.id)
        .where(col(MailboxItem.delivered_at) < before)  # NULL (still waiting) never is
        .order_by(col(MailboxItem.id))
        .limit(limit)
    )
    result = await run(session, delete(MailboxItem).where(col(MailboxItem.id).in_(oldest)))
    return _deleted(result)


async def forget_roster_drafts(session: AsyncSession, before: dt.datetime, limit: int) -> int:
    """Roster uploads made before `before` and never confirmed (they expire in minutes)."""
    oldest = (
        select(RosterDraft.id)
        .where(col(RosterDraft.created_at) < before)
        .order_by(col(RosterDraft.created_at))
        .limit(limit)
    )
    result = await run(session, delete(RosterDraft).where(col(RosterDraft.id).in_(oldest)))
    return _deleted(result)


async def forget_wecom_sends(session: AsyncSession, before: dt.datetime, limit: int) -> int:
    """WeCom sends counted before `before` (`data.wecom_quota`: they count for an hour, and
    for the day's cap until midnight)."""
    oldest = (
        select(Throttle.id)
        .where(Throttle.scope == WECOM_SENDS, col(Throttle.at) < before)
        .order_by(col(Throttle.id))
        .limit(limit)
    )
    result = await run(session, delete(Throttle).where(col(Throttle.id).in_(oldest)))
    return _deleted(result)
