"""Materials (资料) sent by secretaries for their branch's record."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.messages import Media
from data import material_files
from data.models import Material


async def add(
    session: AsyncSession,
    branch_id: int,
    member_id: int,
    channel: str,
    media: Sequence[Media],
    description: str,
    day: dt.date,
    at: dt.datetime,
) -> None:
    """Record the materials and queue the fetch of their files, in the caller's transaction."""
    added = [
        Material(
            branch_id=branch_id,
            member_id=member_id,
            kind=item.kind,
            channel=channel,
            reference=item.reference[:500],
            description=description,
            day=day,
            created_at=at,
        )
        for item in media
    ]
    session.add_all(added)
    await session.flush()
    material_files.enqueue(session, added, at)


async def describe_recent(
    session: AsyncSession, member_id: int, since: dt.datetime, description: str
) -> int:
    """Give the member's materials sent since `since` without a description this one."""
    statement = select(Material).where(
        Material.member_id == member_id, Material.created_at >= since, Material.description == ""
    )
    found = list(await session.exec(statement))
    for material in found:
        material.description = description
        session.add(material)
    return len(found)


async def of_branch(
    session: AsyncSession, branch_id: int, first: dt.date, last: dt.date, limit: int = 20
) -> list[Material]:
    """The branch's first `limit` materials of the days `first`…`last` (a listing per message
    stays one page however many were sent; `count_of_branch` says how many)."""
    statement = (
        select(Material)
        .where(Material.branch_id == branch_id, Material.day >= first, Material.day <= last)
        .order_by(col(Material.id))
        .limit(limit)
    )
    return list(await session.exec(statement))


async def count_of_branch(
    session: AsyncSession, branch_id: int, first: dt.date, last: dt.date
) -> int:
    statement = select(func.count()).where(
        Material.branch_id == branch_id, Material.day >= first, Material.day <= last
    )
    return int((await session.exec(statement)).one())
