"""The append-only points ledger and the sums read from it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.db import insert_new
from data.models import PointsEntry


async def award(
    session: AsyncSession,
    member_id: int,
    points: int,
    *,
    source: str,
    ref: str,
    reason: str,
    day: dt.date,
    at: dt.datetime,
) -> bool:
    """Append an award; False (and nothing written) when this (source, ref) was awarded before."""
    if points <= 0:
        return False
    row = {
        "member_id": member_id,
        "points": points,
        "source": source,
        "ref": ref,
        "reason": reason,
        "day": day,
        "created_at": at,
    }
    return bool(await insert_new(session, PointsEntry, [row], ["member_id", "source", "ref"]))


async def awarded(
    session: AsyncSession, member_id: int, source: str, day: dt.date | None = None
) -> int:
    statement = select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
        PointsEntry.member_id == member_id, PointsEntry.source == source
    )
    if day is not None:
        statement = statement.where(PointsEntry.day == day)
    return int((await session.exec(statement)).one())


async def total(session: AsyncSession, member_id: int, since: dt.date | None = None) -> int:
    statement = select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
        PointsEntry.member_id == member_id
    )
    if since is not None:
        statement = statement.where(PointsEntry.day >= since)
    return int((await session.exec(statement)).one())


async def by_source(session: AsyncSession, member_id: int) -> dict[str, int]:
    statement = (
        select(PointsEntry.source, func.sum(PointsEntry.points))
        .where(PointsEntry.member_id == member_id)
        .group_by(col(PointsEntry.source))
    )
    return {source: int(points) for source, points in await session.exec(statement)}


async def has_award(session: AsyncSession, member_id: int, source: str, ref: str) -> bool:
    statement = select(PointsEntry.id).where(
        PointsEntry.member_id == member_id, PointsEntry.source == source, PointsEntry.ref == ref
    )
    return (await session.exec(statement)).first() is not None
