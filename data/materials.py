"""Materials (资料) sent by secretaries for their branch's record."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.messages import Media
from data import material_files
from data.models import Branch, Material, MaterialFile, Member


async def add(
    session: AsyncSession,
    branch_id: int,
    member_id: int,
    channel: str,
    media: Sequence[Media],
    description: str,
    day: dt.date,
    at: dt.datetime,
    activity_id: int | None = None,
) -> None:
    """Record the materials (of the activity, when given) and queue the fetch of their
    files, in the caller's transaction."""
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
            activity_id=activity_id,
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


@dataclass(frozen=True)
class Shown:
    """A material as the console's gallery shows it: who sent it, and its kept file."""

    material: Material
    sender: str
    file: MaterialFile | None


GALLERY_PAGE = 60


async def gallery(
    session: AsyncSession, branch_id: int, first: dt.date, last: dt.date, page: int
) -> list[Shown]:
    """One page of the branch's materials of the days `first`…`last`, oldest first."""
    statement = (
        select(Material, Member.name, MaterialFile)
        .join(Member, col(Member.id) == col(Material.member_id))
        .outerjoin(MaterialFile, col(MaterialFile.material_id) == col(Material.id))
        .where(Material.branch_id == branch_id, Material.day >= first, Material.day <= last)
        .order_by(col(Material.id))
        .offset((page - 1) * GALLERY_PAGE)
        .limit(GALLERY_PAGE)
    )
    return [Shown(m, name, file) for m, name, file in await session.exec(statement)]


async def counts_by_branch(
    session: AsyncSession, first: dt.date, last: dt.date
) -> list[tuple[int, str, int]]:
    """(branch id, name, materials of the days `first`…`last`) of every branch, by name."""
    sent = (
        select(Material.branch_id, func.count().label("n"))
        .where(Material.day >= first, Material.day <= last)
        .group_by(col(Material.branch_id))
        .subquery()
    )
    statement = (
        select(Branch.id, Branch.name, func.coalesce(sent.c.n, 0))
        .outerjoin(sent, sent.c.branch_id == Branch.id)
        .order_by(col(Branch.name))
    )
    return [(int(i or 0), name, int(n)) for i, name, n in await session.exec(statement)]


async def with_file(session: AsyncSession, material_id: int) -> Shown | None:
    statement = (
        select(Material, Member.name, MaterialFile)
        .join(Member, col(Member.id) == col(Material.member_id))
        .outerjoin(MaterialFile, col(MaterialFile.material_id) == col(Material.id))
        .where(Material.id == material_id)
    )
    found = (await session.exec(statement)).first()
    return Shown(found[0], found[1], found[2]) if found else None


async def of_activity(
    session: AsyncSession, activity_id: int, branch_id: int | None, limit: int = GALLERY_PAGE
) -> list[Shown]:
    """The materials linked to the activity (of the branch; None: every branch), oldest
    first."""
    statement = (
        select(Material, Member.name, MaterialFile)
        .join(Member, col(Member.id) == col(Material.member_id))
        .outerjoin(MaterialFile, col(MaterialFile.material_id) == col(Material.id))
        .where(Material.activity_id == activity_id)
        .order_by(col(Material.id))
        .limit(limit)
    )
    if branch_id is not None:
        statement = statement.where(Material.branch_id == branch_id)
    return [Shown(m, name, file) for m, name, file in await session.exec(statement)]


async def linkable(
    session: AsyncSession,
    activity_id: int,
    branch_ids: Sequence[int],
    first: dt.date,
    last: dt.date,
    limit: int = GALLERY_PAGE,
) -> list[Shown]:
    """The materials of the branches sent on the days `first`…`last` that are not linked to
    the activity (not linked at all, or to another one), oldest first."""
    statement = (
        select(Material, Member.name, MaterialFile)
        .join(Member, col(Member.id) == col(Material.member_id))
        .outerjoin(MaterialFile, col(MaterialFile.material_id) == col(Material.id))
        .where(
            col(Material.branch_id).in_(list(branch_ids)),
            Material.day >= first,
            Material.day <= last,
            or_(col(Material.activity_id).is_(None), col(Material.activity_id) != activity_id),
        )
        .order_by(col(Material.id))
        .limit(limit)
    )
    return [Shown(m, name, file) for m, name, file in await session.exec(statement)]
