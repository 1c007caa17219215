"""Study entries and the day totals, streaks and goals built on them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.models import StudyEntry

# How far back a streak is followed: far enough for any streak a person keeps up.
STREAK_HORIZON_DAYS = 3660


async def add_entry(
    session: AsyncSession, member_id: int, day: dt.date, minutes: int, note: str, at: dt.datetime
) -> StudyEntry:
    entry = StudyEntry(member_id=member_id, day=day, minutes=minutes, note=note, created_at=at)
    session.add(entry)
    await session.flush()
    return entry


async def minutes_on(session: AsyncSession, member_id: int, day: dt.date) -> int:
    statement = select(func.coalesce(func.sum(StudyEntry.minutes), 0)).where(
        StudyEntry.member_id == member_id, StudyEntry.day == day
    )
    return int((await session.exec(statement)).one())


async def streak_until(session: AsyncSession, member_id: int, day: dt.date, goal: int) -> int:
    """Consecutive days at the goal ending on `day`, or on the day before when `day` is short."""
    statement = (
        select(StudyEntry.day)
        .where(
            StudyEntry.member_id == member_id,
            StudyEntry.day <= day,
            StudyEntry.day > day - dt.timedelta(days=STREAK_HORIZON_DAYS),
        )
        .group_by(col(StudyEntry.day))
        .having(func.sum(StudyEntry.minutes) >= goal)
        .order_by(col(StudyEntry.day).desc())
    )
    days = list(await session.exec(statement))
    expected = day if days and days[0] == day else day - dt.timedelta(days=1)
    streak = 0
    for goal_day in days:
        if goal_day != expected:
            break
        streak += 1
        expected -= dt.timedelta(days=1)
    return streak
