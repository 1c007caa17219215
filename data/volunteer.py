"""Volunteer entries and their review."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.models import Member, ReviewState, VolunteerEntry

PENDING_LIST_LIMIT = 20


async def submit(
    session: AsyncSession,
    member_id: int,
    minutes: int,
    description: str,
    day: dt.date,
    at: dt.datetime,
) -> VolunteerEntry:
    entry = VolunteerEntry(
        member_id=member_id, minutes=minutes, description=description, day=day, created_at=at
    )
    session.add(entry)
    await session.flush()
    return entry


@dataclass(frozen=True)
class PendingEntry:
    id: int
    member_name: str
    minutes: int
    description: str
    day: dt.date


async def pending(
    session: AsyncSession, branch_id: int | None, limit: int = PENDING_LIST_LIMIT
) -> tuple[list[PendingEntry], int]:
    """The oldest `limit` pending entries (of one branch, or all when `branch_id` is None) and
    how many are pending: a page and a count, however many wait (`审核` runs per message)."""
    waiting = [VolunteerEntry.state == ReviewState.PENDING.value]
    if branch_id is not None:
        waiting.append(Member.branch_id == branch_id)
    statement = (
        select(VolunteerEntry, Member.name)
        .join(Member, col(Member.id) == col(VolunteerEntry.member_id))
        .where(*waiting)
        .order_by(col(VolunteerEntry.id))
        .limit(limit)
    )
    entries = [
        PendingEntry(entry.id or 0, name, entry.minutes, entry.description, entry.day)
        for entry, name in await session.exec(statement)
    ]
    total = len(entries)
    if total == limit:  # more may wait: count them in the database
        counted = (
            select(func.count())
            .select_from(VolunteerEntry)
            .join(Member, col(Member.id) == col(VolunteerEntry.member_id))
            .where(*waiting)
        )
        total = int((await session.exec(counted)).one())
    return entries, total


async def pending_with_members(
    session: AsyncSession, branch_id: int | None, limit: int
) -> list[tuple[VolunteerEntry, Member]]:
    """The oldest `limit` pending entries in the scope, each with its member."""
    statement = (
        select(VolunteerEntry, Member)
        .join(Member, col(Member.id) == col(VolunteerEntry.member_id))
        .where(VolunteerEntry.state == ReviewState.PENDING.value)
        .order_by(col(VolunteerEntry.id))
        .limit(limit)
    )
    if branch_id is not None:
        statement = statement.where(Member.branch_id == branch_id)
    return [(entry, member) for entry, member in await session.exec(statement)]


async def pending_ids(
    session: AsyncSession, branch_id: int | None, reviewer_id: int, limit: int
) -> list[int]:
    """The ids of the oldest `limit` pending entries in the scope, not the reviewer's own."""
    statement = (
        select(VolunteerEntry.id)
        .join(Member, col(Member.id) == col(VolunteerEntry.member_id))
        .where(
            VolunteerEntry.state == ReviewState.PENDING.value,
            VolunteerEntry.member_id != reviewer_id,
        )
        .order_by(col(VolunteerEntry.id))
        .limit(limit)
    )
    if branch_id is not None:
        statement = statement.where(Member.branch_id == branch_id)
    return [entry_id for entry_id in await session.exec(statement) if entry_id is not None]


async def entry_with_member(
    session: AsyncSession, entry_id: int
) -> tuple[VolunteerEntry, Member] | None:
    statement = (
        select(VolunteerEntry, Member)
        .join(Member, col(Member.id) == col(VolunteerEntry.member_id))
        .where(VolunteerEntry.id == entry_id)
        # The entry only: a reviewer's message holds their own member row already, and two
        # secretaries reviewing each other's entries must not lock each other's rows.
        .with_for_update(of=VolunteerEntry)  # type: ignore[arg-type]
    )
    row = (await session.exec(statement)).first()
    return (row[0], row[1]) if row else None


def decide(
    entry: VolunteerEntry,
    state: ReviewState,
    reviewer_id: int,
    at: dt.datetime,
    reason: str = "",
) -> None:
    entry.state = state.value
    entry.reviewer_id = reviewer_id
    entry.reviewed_at = at
    entry.reason = reason
