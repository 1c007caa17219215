"""The durable outbox: pushes are rows first, sent later; the unique key is the dedupe."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass

from sqlalchemy import func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data import leases
from data.db import insert_new
from data.limits import shortened
from data.models import DeliveryAttempt, OutboxItem, OutboxState, PushKind

INSERT_CHUNK = 1000
# The longest brief kept: it must fit a reply with room to spare (a mailbox line waits for a
# reply it fits in; one that fits in none would wait for ever). 500 CJK characters are
# 1,500 of a reply's 2,048 bytes: a review result with a full description and reason fits.
BRIEF_LIMIT = 500


@dataclass(frozen=True)
class Push:
    """An intended push to one member."""

    member_id: int
    kind: PushKind
    ref: str  # what it is about: "article:12", "entry:5", "day"
    day: dt.date
    text: str
    brief: str
    due_at: dt.datetime
    image: str = ""  # a picture file sent after the text, where the channel allows

    @property
    def key(self) -> str:
        return f"{self.member_id}:{self.kind.value}:{self.ref}:{self.day.isoformat()}"


async def _each(pushes: Iterable[Push] | AsyncIterable[Push]) -> AsyncIterator[Push]:
    if isinstance(pushes, AsyncIterable):
        async for push in pushes:
            yield push
    else:
        for push in pushes:
            yield push


async def enqueue(
    session: AsyncSession, pushes: Iterable[Push] | AsyncIterable[Push], now: dt.datetime
) -> int:
    """Insert the pushes not queued before, in chunks as they stream in; returns how many
    are new."""
    added = 0
    chunk: list[dict[str, object]] = []

    async def flush() -> int:
        if not chunk:
            return 0
        count = await insert_new(session, OutboxItem, chunk, ["key"])
        chunk.clear()
        return count

    async for push in _each(pushes):
        chunk.append(
            {
                "key": push.key,
                "member_id": push.member_id,
                "kind": push.kind.value,
                "priority": push.kind.priority,
                "text": push.text,
                "brief": shortened(push.brief, BRIEF_LIMIT),
                "image": push.image,
                "day": push.day,
                "due_at": push.due_at,
                "state": OutboxState.PENDING.value,
                "attempts": 0,
                "last_error": "",
                "created_at": now,
            }
        )
        if len(chunk) >= INSERT_CHUNK:
            added += await flush()
    return added + await flush()


async def claim_due(
    session: AsyncSession, now: dt.datetime, members: int, lease: dt.timedelta
) -> list[OutboxItem]:
    """Lease every due item of up to `members` members (whole bundles), oldest first.

    An item whose lease ran out (its dispatcher died mid-send) is due again (`data.leases`:
    renewing and settling the lease are shared with the group posts). On PostgreSQL
    rows another dispatcher holds are skipped, so several dispatchers share the work.
    """
    # Members are picked from a bounded window of the oldest due rows (an index range scan on
    # (state, due_at)), so each claim costs the same however long the backlog is. Those rows
    # are locked as they are read, skipping rows another dispatcher holds: two dispatchers
    # pick different members instead of colliding on the same ones.
    # One row a member at most: every row locked here belongs to a member this claim takes,
    # so no other dispatcher is kept from rows this one will not send.
    window = members
    oldest_pending = (
        select(OutboxItem.member_id)
        .where(OutboxItem.state == OutboxState.PENDING.value, OutboxItem.due_at <= now)
        .order_by(col(OutboxItem.due_at))
        .limit(window)
        .with_for_update(skip_locked=True)
    )
    expired_leases = (
        select(OutboxItem.member_id)
        .where(OutboxItem.state == OutboxState.SENDING.value, col(OutboxItem.lease_until) < now)
        .limit(window)
        .with_for_update(skip_locked=True)
    )
    found = list(await session.exec(oldest_pending)) + list(await session.exec(expired_leases))
    chosen = list(dict.fromkeys(found))[:members]  # first come, first served
    if not chosen:
        return []
    statement = (
        select(OutboxItem)
        .where(col(OutboxItem.member_id).in_(chosen), leases.due(OutboxItem, now))
        .order_by(col(OutboxItem.member_id), col(OutboxItem.priority), col(OutboxItem.id))
        .with_for_update(skip_locked=True)
    )
    items = list(await session.exec(statement))
    leases.take(session, items, now, lease)
    return items


# A push meant for one of the member's chat accounts only (a security notice) ends its
# reference with ">" and that account's channel: "bind:12>wechat".
ADDRESSED = ">"


def addressed_to(item: OutboxItem) -> str | None:
    """The channel an item is meant for alone, or None when any of the member's will do."""
    ref = item.key.rsplit(":", 1)[0]  # the key ends with the day
    return ref.rpartition(ADDRESSED)[2] if ADDRESSED in ref else None


# Kinds whose moment is the point: not folded into a reply before they are due (a reminder
# an hour before an activity, shown in a reply the day before, would remind no one).
TIMED_KINDS = (PushKind.ACTIVITY_REMINDER.value,)


def article_of(item: OutboxItem) -> int | None:
    """The article a push of a new lesson, news or video is about (`…:article:12:<day>`)."""
    ref = item.key.rsplit(":", 1)[0]
    _, _, number = ref.rpartition(":article:")
    return int(number) if number.isascii() and number.isdigit() and len(number) <= 12 else None


async def waiting_for(
    session: AsyncSession,
    member_id: int,
    channel: str | None = None,
    now: dt.datetime | None = None,
) -> list[OutboxItem]:
    """The member's pending items (due or deferred), for folding into a reply on `channel`:
    an item addressed to another of the member's accounts is left for that one; with `now`,
    a timed item (`TIMED_KINDS`) not due yet waits for its time."""
    statement = (
        select(OutboxItem)
        .where(OutboxItem.member_id == member_id, OutboxItem.state == OutboxState.PENDING.value)
        .order_by(col(OutboxItem.priority), col(OutboxItem.id))
        .with_for_update(skip_locked=True)
    )
    if now is not None:
        statement = statement.where(
            or_(col(OutboxItem.kind).not_in(TIMED_KINDS), col(OutboxItem.due_at) <= now)
        )
    if channel is not None:
        statement = statement.where(
            or_(
                col(OutboxItem.key).not_like(f"%{ADDRESSED}%"),
                col(OutboxItem.key).like(f"%{ADDRESSED}{channel}:%"),
            )
        )
    return list(await session.exec(statement))


def deliver_in_reply(session: AsyncSession, item: OutboxItem, at: dt.datetime) -> None:
    """The member saw the item in a reply to their own message: done, at no push cost."""
    item.state = OutboxState.MAILBOX.value
    item.done_at = at
    session.add(item)
    record(session, item, "reply", True, at)


def record(
    session: AsyncSession,
    item: OutboxItem,
    method: str,
    ok: bool,
    at: dt.datetime,
    errcode: int | None = None,
    detail: str = "",
) -> None:
    assert item.id is not None
    session.add(
        DeliveryAttempt(
            outbox_id=item.id, at=at, method=method, ok=ok, errcode=errcode, detail=detail[:300]
        )
    )


async def counts(session: AsyncSession) -> dict[str, int]:
    statement = select(OutboxItem.state, func.count()).group_by(col(OutboxItem.state))
    return {state: int(n) for state, n in await session.exec(statement)}


async def retry_failed(session: AsyncSession, now: dt.datetime, item_id: int | None = None) -> int:
    """Failed items back to pending, due now, with a fresh attempt count."""
    statement = (
        update(OutboxItem)
        .where(col(OutboxItem.state) == OutboxState.FAILED.value)
        .values(state=OutboxState.PENDING.value, due_at=now, attempts=0, lease_until=None)
    )
    if item_id is not None:
        statement = statement.where(col(OutboxItem.id) == item_id)
    result = await session.exec(statement)
    return int(result.rowcount or 0)


# Why a pending item was skipped before it went: its member no longer wants it (a reminder
# of an activity they cancelled or asked leave from). Only such an item is queued again.
WITHDRAWN = "withdrawn"


async def withdraw(session: AsyncSession, key: str, at: dt.datetime) -> int:
    """Skip the pending item of `key` in the caller's transaction (an item already sent, or
    being sent, is left as it is); returns how many were skipped (0 or 1)."""
    statement = (
        update(OutboxItem)
        .where(col(OutboxItem.key) == key, col(OutboxItem.state) == OutboxState.PENDING.value)
        .values(state=OutboxState.SKIPPED.value, last_error=WITHDRAWN, done_at=at)
    )
    result = await session.exec(statement)
    return int(result.rowcount or 0)


async def restore(session: AsyncSession, key: str, due_at: dt.datetime) -> int:
    """Queue again, due at `due_at`, the item of `key` that `withdraw` skipped; returns how
    many were (0 or 1)."""
    statement = (
        update(OutboxItem)
        .where(
            col(OutboxItem.key) == key,
            col(OutboxItem.state) == OutboxState.SKIPPED.value,
            col(OutboxItem.last_error) == WITHDRAWN,
        )
        .values(state=OutboxState.PENDING.value, last_error="", done_at=None, due_at=due_at)
    )
    result = await session.exec(statement)
    return int(result.rowcount or 0)
