"""Leases on the rows a dispatcher is delivering — the outbox's items and the groups' posts:
which rows are due, taking them, renewing the lease, and settling each one (done, retried
with backoff, failed, or given back). One implementation for every table with the delivery
columns (`state`, `due_at`, `attempts`, `lease_until`, `last_error`, `done_at`): the outbox,
the group posts and the materials' file fetches (whose held state is `fetching`).

Ownership needs no column of its own: a holder knows the `lease_until` it wrote, and a row
is still its own exactly while it is `sending` with that value. A dispatcher whose lease ran
out and was taken over finds its rows changed, and leaves them to the new holder.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, or_, update
from sqlmodel import and_, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.models import FetchState, GroupPost, MaterialFile, OutboxItem, OutboxState

Row = OutboxItem | GroupPost | MaterialFile
Table = type[OutboxItem] | type[GroupPost] | type[MaterialFile]
Change = dict[str, Any]
R = TypeVar("R", OutboxItem, GroupPost, MaterialFile)


def held(table: Table) -> str:
    """The state of a table's rows while a lease holds them."""
    if table is MaterialFile:
        return FetchState.FETCHING.value
    return OutboxState.SENDING.value


def due(table: Table, now: dt.datetime) -> ColumnElement[bool]:
    """Pending rows whose time has come, and rows whose lease ran out (their dispatcher died
    or lost them mid-send)."""
    return or_(
        and_(table.state == OutboxState.PENDING.value, col(table.due_at) <= now),
        and_(table.state == held(table), col(table.lease_until) < now),
    )


@dataclass
class Lease:
    """The rows one claim took, held until `until`."""

    table: Table
    until: dt.datetime
    ids: set[int] = field(default_factory=set)

    @classmethod
    def over(cls, table: Table, rows: Sequence[Row], until: dt.datetime) -> Lease:
        return cls(table, until, {row.id for row in rows if row.id is not None})


async def claim(
    session: AsyncSession, table: type[R], now: dt.datetime, limit: int, length: dt.timedelta
) -> list[R]:
    """Lease up to `limit` due rows of `table`, oldest first, skipping rows another holder
    has locked."""
    statement = (
        select(table)
        .where(due(table, now))
        .order_by(col(table.due_at), col(table.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = list(await session.exec(statement))
    take(session, rows, now, length)
    return rows


def take(
    session: AsyncSession, rows: Sequence[Row], now: dt.datetime, length: dt.timedelta
) -> None:
    """Mark the claimed (locked) rows `sending` until `now + length`."""
    for row in rows:
        row.state = held(type(row))
        row.lease_until = now + length
        session.add(row)


async def renew(
    session: AsyncSession, lease: Lease, now: dt.datetime, length: dt.timedelta
) -> Lease:
    """Extend the lease on the rows still held; the rows another holder took are left out of
    the lease returned (and must not be sent by this one)."""
    if not lease.ids:
        return lease
    until = now + length
    table = lease.table
    statement = (
        update(table)
        .where(
            col(table.id).in_(sorted(lease.ids)),
            table.state == held(table),
            col(table.lease_until) == lease.until,
        )
        .values(lease_until=until)
        .returning(col(table.id))
    )
    kept = {int(row_id) for row_id in (await session.exec(statement)).scalars()}
    return Lease(table, until, kept)


async def settle(session: AsyncSession, lease: Lease, changes: Iterable[Change]) -> set[int]:
    """Write the rows' new values, for the rows still held only; returns their ids.

    The held rows are locked first: a claim running meanwhile skips them (or, if it locked
    them first, has changed their lease by the time they are read here).
    """
    wanted = [change for change in changes if change["id"] in lease.ids]
    if not wanted:
        return set()
    table = lease.table
    statement = (
        select(table.id)
        .where(
            col(table.id).in_(sorted({change["id"] for change in wanted})),
            table.state == held(table),
            col(table.lease_until) == lease.until,
        )
        .with_for_update()
    )
    holding = {int(row_id) for row_id in await session.exec(statement) if row_id is not None}
    kept = [change for change in wanted if change["id"] in holding]
    if kept:
        await session.exec(update(table), params=kept)  # type: ignore[call-overload]
    return holding


# --- the new values of a settled row ------------------------------------------------------


def backoff(base_seconds: float, attempts: int, rng: random.Random) -> dt.timedelta:
    """Exponential from `base_seconds`, doubling per attempt, with ±50% jitter."""
    seconds = base_seconds * 2 ** (attempts - 1)
    return dt.timedelta(seconds=seconds * rng.uniform(0.5, 1.5))


def done(row: Row, state: StrEnum, now: dt.datetime, error: str = "") -> Change:
    """Finished in `state` (sent, fallback, mailbox, skipped, stored; failed without a
    retry)."""
    return {
        "id": row.id,
        "state": state.value,
        "lease_until": None,
        "done_at": now,
        "last_error": error[:300],
    }


@dataclass(frozen=True)
class Retries:
    """How a failure that may pass is retried: `max_attempts` tries in all, spaced by an
    exponential backoff from `base_seconds`."""

    max_attempts: int
    base_seconds: float
    rng: random.Random

    def after(
        self, row: Row, now: dt.datetime, error: str, delay: dt.timedelta | None = None
    ) -> Change:
        """Pending again after the backoff (or `delay`), or failed when the tries are used up."""
        attempts = row.attempts + 1
        if attempts >= self.max_attempts:
            return done(row, OutboxState.FAILED, now, error) | {"attempts": attempts}
        return {
            "id": row.id,
            "state": OutboxState.PENDING.value,
            "lease_until": None,
            "done_at": None,
            "last_error": error[:300],
            "attempts": attempts,
            "due_at": now + (delay or backoff(self.base_seconds, attempts, self.rng)),
        }


def given_back(row: Row) -> Change:
    """Not tried at all (this holder stopped before its turn): pending again, due as it was."""
    return {"id": row.id, "state": OutboxState.PENDING.value, "lease_until": None}
