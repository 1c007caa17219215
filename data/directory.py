"""The roster as the console lists it: search, filters, paging, and one member's record.
Every query takes the viewer's scope (a branch id, or None for all)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.models import (
    Binding,
    Branch,
    Member,
    PointsEntry,
    ReviewState,
    StudyEntry,
    VolunteerEntry,
)

PAGE_SIZE = 50
SEARCH_LIMIT = 50  # characters of a search


@dataclass(frozen=True)
class Query:
    text: str = ""  # a name or 工号, or a part of one
    branch_id: int | None = None
    role: str | None = None
    channel: str | None = None  # bound on this channel
    unbound: bool = False  # bound on no channel at all
    left: bool = False  # members who left (otherwise: present members)
    page: int = 1


@dataclass(frozen=True)
class Row:
    id: int
    roster_id: str
    name: str
    branch: str
    role: str
    channels: tuple[str, ...]
    left_on: dt.date | None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def matching(text: str) -> ColumnElement[bool]:
    """A member whose name or 工号 contains `text` (typed: `%` and `_` are no wildcards)."""
    pattern = f"%{_escape_like(text[:SEARCH_LIMIT])}%"
    return or_(
        col(Member.name).like(pattern, escape="\\"),
        col(Member.roster_id).like(pattern, escape="\\"),
    )


async def search(session: AsyncSession, query: Query, scope: int | None) -> tuple[list[Row], int]:
    """One page of members matching `query` within `scope`, by 工号; and how many match."""
    statement = select(Member, Branch.name).join(Branch, col(Branch.id) == col(Member.branch_id))
    conditions = []
    if scope is not None:
        conditions.append(col(Member.branch_id) == scope)
    if query.branch_id is not None:
        conditions.append(col(Member.branch_id) == query.branch_id)
    if query.role:
        conditions.append(col(Member.role) == query.role)
    conditions.append(
        col(Member.left_on).is_not(None) if query.left else col(Member.left_on).is_(None)
    )
    if query.text:
        conditions.append(matching(query.text))
    bound = select(Binding.member_id)
    if query.channel:
        conditions.append(col(Member.id).in_(bound.where(Binding.channel == query.channel)))
    if query.unbound:
        conditions.append(col(Member.id).not_in(bound))
    statement = statement.where(*conditions)
    total = (await session.exec(select(func.count()).select_from(statement.subquery()))).one()
    page = max(1, query.page)
    rows = list(
        await session.exec(
            statement.order_by(col(Member.roster_id))
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        )
    )
    ids = [member.id for member, _ in rows if member.id is not None]
    channels: dict[int, list[str]] = {}
    if ids:
        found = await session.exec(
            select(Binding.member_id, Binding.channel)
            .where(col(Binding.member_id).in_(ids))
            .order_by(col(Binding.channel))
        )
        for member_id, channel in found:
            channels.setdefault(member_id, []).append(channel)
    listed = [
        Row(
            member.id or 0,
            member.roster_id,
            member.name,
            branch,
            member.role,
            tuple(channels.get(member.id or 0, [])),
            member.left_on,
        )
        for member, branch in rows
    ]
    return listed, int(total)


async def branches(session: AsyncSession, scope: int | None) -> Sequence[Branch]:
    statement = select(Branch).order_by(col(Branch.name))
    if scope is not None:
        statement = statement.where(Branch.id == scope)
    return (await session.exec(statement)).all()


@dataclass(frozen=True)
class Record:
    member: Member
    branch: str
    bindings: Sequence[Binding]
    study_days: int
    study_minutes: int
    volunteer_minutes: int
    points_total: int
    ledger: Sequence[PointsEntry]
    ledger_total_rows: int


async def record(
    session: AsyncSession,
    member_id: int,
    scope: int | None,
    month: tuple[dt.date, dt.date],
    ledger_page: int = 1,
) -> Record | None:
    """A member's page: None when there is no such member *in the scope* — a secretary asking
    for another branch's member learns nothing, not even that the id exists."""
    member = await session.get(Member, member_id)
    if member is None or (scope is not None and member.branch_id != scope):
        return None
    branch = await session.get(Branch, member.branch_id)
    first, last = month
    bindings = (
        await session.exec(
            select(Binding).where(Binding.member_id == member_id).order_by(col(Binding.channel))
        )
    ).all()
    days, minutes = (
        await session.exec(
            select(
                func.count(func.distinct(StudyEntry.day)),
                func.coalesce(func.sum(StudyEntry.minutes), 0),
            ).where(
                StudyEntry.member_id == member_id,
                col(StudyEntry.day) >= first,
                col(StudyEntry.day) <= last,
            )
        )
    ).one()
    volunteer = (
        await session.exec(
            select(func.coalesce(func.sum(VolunteerEntry.minutes), 0)).where(
                VolunteerEntry.member_id == member_id,
                VolunteerEntry.state == ReviewState.APPROVED.value,
                col(VolunteerEntry.day) >= first,
                col(VolunteerEntry.day) <= last,
            )
        )
    ).one()
    total, rows = (
        await session.exec(
            select(func.coalesce(func.sum(PointsEntry.points), 0), func.count()).where(
                PointsEntry.member_id == member_id
            )
        )
    ).one()
    page = max(1, ledger_page)
    ledger = (
        await session.exec(
            select(PointsEntry)
            .where(PointsEntry.member_id == member_id)
            .order_by(col(PointsEntry.id).desc())
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        )
    ).all()
    return Record(
        member,
        branch.name if branch else "",
        bindings,
        int(days),
        int(minutes),
        int(volunteer),
        int(total),
        ledger,
        int(rows),
    )
