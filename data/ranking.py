"""Monthly rankings of members and branches by points earned, computed in SQL."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.models import Branch, Member, PointsEntry


@dataclass(frozen=True)
class MemberRank:
    name: str
    points: int


@dataclass(frozen=True)
class BranchRank:
    name: str
    members: int
    points: int

    @property
    def per_member(self) -> float:
        return self.points / self.members if self.members else 0.0


async def top_members(
    session: AsyncSession, branch_id: int, first: dt.date, last: dt.date, limit: int = 10
) -> list[MemberRank]:
    points = func.sum(PointsEntry.points)
    statement = (
        select(Member.name, points)
        .join(PointsEntry, col(PointsEntry.member_id) == col(Member.id))
        .where(Member.branch_id == branch_id, PointsEntry.day >= first, PointsEntry.day <= last)
        .group_by(col(Member.id), col(Member.name))
        .order_by(points.desc(), col(Member.name))
        .limit(limit)
    )
    return [MemberRank(name, int(total)) for name, total in await session.exec(statement)]


async def branches(session: AsyncSession, first: dt.date, last: dt.date) -> list[BranchRank]:
    """Every branch with members, best points per member first (fair to small branches)."""
    earned = (
        select(
            PointsEntry.member_id.label("member_id"),  # type: ignore[attr-defined]
            func.sum(PointsEntry.points).label("points"),
        )
        .where(PointsEntry.day >= first, PointsEntry.day <= last)
        .group_by(col(PointsEntry.member_id))
        .subquery()
    )
    statement = (
        select(
            Branch.name,
            func.count(col(Member.id)),
            func.coalesce(func.sum(earned.c.points), 0),
        )
        .join(Member, col(Member.branch_id) == col(Branch.id))
        .outerjoin(earned, earned.c.member_id == col(Member.id))
        .group_by(col(Branch.id), col(Branch.name))
    )
    ranks = [BranchRank(name, int(n), int(p)) for name, n, p in await session.exec(statement)]
    return sorted(ranks, key=lambda rank: (-rank.per_member, rank.name))
