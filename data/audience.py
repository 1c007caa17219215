"""Who a push goes to, computed in SQL and streamed, so memory stays flat as members grow."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

from sqlalchemy import Time, exists, func, literal
from sqlmodel import and_, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.models import Binding, Member, Role, StudyEntry

STREAM_CHUNK = 1000


def _reachable():  # type: ignore[no-untyped-def]
    """A member still in the organisation with a chat account that still follows. (A member
    who left has no binding any more; the date is checked too, so no push can reach them
    whatever a binding's state.)"""
    return and_(
        col(Member.left_on).is_(None),
        exists().where(Binding.member_id == Member.id, col(Binding.reachable).is_(True)),
    )


async def reachable_members(session: AsyncSession) -> AsyncIterator[tuple[int, str]]:
    """(member id, name) of everyone with at least one chat account that still follows."""
    statement = select(Member.id, Member.name).where(_reachable()).order_by(col(Member.id))
    result = await session.stream(statement.execution_options(yield_per=STREAM_CHUNK))
    async for member_id, name in result:
        yield member_id, name


async def reminder_due(
    session: AsyncSession, day: dt.date, at: dt.time, default_time: dt.time, goal: int
) -> AsyncIterator[tuple[int, str, int]]:
    """(member id, name, minutes today) of members whose reminder time has come, who are
    below the goal, have reminders on and can be reached."""
    minutes = func.coalesce(func.sum(StudyEntry.minutes), 0)
    reminder_at = func.coalesce(Member.reminder_time, literal(default_time, Time))
    statement = (
        select(Member.id, Member.name, minutes)
        .outerjoin(StudyEntry, and_(StudyEntry.member_id == Member.id, StudyEntry.day == day))
        .where(col(Member.reminder_enabled).is_(True), reminder_at <= literal(at, Time))
        .where(_reachable())
        .group_by(col(Member.id), col(Member.name))
        .having(minutes < goal)
        .order_by(col(Member.id))
    )
    result = await session.stream(statement.execution_options(yield_per=STREAM_CHUNK))
    async for member_id, name, total in result:
        yield member_id, name, int(total)


async def admins(session: AsyncSession) -> list[int]:
    statement = select(Member.id).where(
        Member.role == Role.ADMIN.value, col(Member.left_on).is_(None)
    )
    return [member_id for member_id in await session.exec(statement) if member_id is not None]


async def staff(session: AsyncSession) -> list[tuple[int, int, str]]:
    """(member id, branch id, role) of the secretaries and admins who can be reached."""
    statement = (
        select(Member.id, Member.branch_id, Member.role)
        .where(col(Member.role).in_([Role.SECRETARY.value, Role.ADMIN.value]), _reachable())
        .order_by(col(Member.id))
    )
    return [(mid, branch, role) for mid, branch, role in await session.exec(statement) if mid]
