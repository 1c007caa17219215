"""The office's grades of the branches' monthly materials (月打分)."""

from __future__ import annotations

import datetime as dt

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.models import MonthGrade


async def grade_of(session: AsyncSession, branch_id: int, month: dt.date) -> MonthGrade | None:
    """The branch's grade for the month starting on `month`, if given."""
    statement = select(MonthGrade).where(
        MonthGrade.branch_id == branch_id, MonthGrade.month == month
    )
    return (await session.exec(statement)).first()


async def values_of_month(session: AsyncSession, month: dt.date) -> dict[int, float]:
    """Branch id -> the grading part (0..1) of every branch graded for the month."""
    statement = select(MonthGrade.branch_id, MonthGrade.value).where(MonthGrade.month == month)
    return {branch_id: value for branch_id, value in await session.exec(statement)}


async def put(
    session: AsyncSession,
    branch_id: int,
    month: dt.date,
    *,
    grade: str,
    value: float,
    comment: str,
    grader_id: int | None,
    grader: str,
    at: dt.datetime,
) -> MonthGrade:
    """Give or change the branch's grade for the month, in the caller's transaction."""
    found = await grade_of(session, branch_id, month) or MonthGrade(
        branch_id=branch_id, month=month, grade=grade, value=value, grader=grader, graded_at=at
    )
    found.grade, found.value, found.comment = grade, value, comment
    found.graded_by, found.grader, found.graded_at = grader_id, grader[:120], at
    session.add(found)
    await session.flush()
    return found
