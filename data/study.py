"""Study entries and the day totals, streaks and goals built on them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import bindparam, func, insert, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.db import run
from data.models import PointsEntry, StudyEntry
from data.planned import planned

# How far back a streak is followed: far enough for any streak a person keeps up.
STREAK_HORIZON_DAYS = 3660


_ENTRY = StudyEntry.__table__  # type: ignore[attr-defined]
_ADD_ENTRY = insert(_ENTRY).returning(_ENTRY.c.id)
_ADD_ENTRY = planned(_ADD_ENTRY)
_MINUTES_ON = select(func.coalesce(func.sum(_ENTRY.c.minutes), 0)).where(
    _ENTRY.c.member_id == bindparam("member_id"), _ENTRY.c.day == bindparam("day")
)
_MINUTES_ON = planned(_MINUTES_ON)
_LEDGER = PointsEntry.__table__  # type: ignore[attr-defined]
_STUDY_POINTS_ON = select(func.coalesce(func.sum(_LEDGER.c.points), 0)).where(
    _LEDGER.c.member_id == bindparam("member_id"),
    _LEDGER.c.source == "study",
    _LEDGER.c.day == bindparam("day"),
)
_DAY_SO_FAR = select(_MINUTES_ON.scalar_subquery(), _STUDY_POINTS_ON.scalar_subquery())
_DAY_SO_FAR = planned(_DAY_SO_FAR)
_GOAL_DAYS = (
    select(_ENTRY.c.day)
    .where(
        _ENTRY.c.member_id == bindparam("member_id"),
        _ENTRY.c.day <= bindparam("day"),
        _ENTRY.c.day > bindparam("horizon"),
    )
    .group_by(_ENTRY.c.day)
    .having(func.sum(_ENTRY.c.minutes) >= bindparam("goal"))
    .order_by(_ENTRY.c.day.desc())
)
_GOAL_DAYS = planned(_GOAL_DAYS)


async def add_entry(
    session: AsyncSession,
    member_id: int,
    day: dt.date,
    minutes: int,
    note: str,
    at: dt.datetime,
    *,
    activity_id: int | None = None,
) -> int:
    """Record study time (an activity's, when `activity_id` names it: once); the entry's id."""
    row = {
        "member_id": member_id,
        "day": day,
        "minutes": minutes,
        "note": note,
        "created_at": at,
        "activity_id": activity_id,
    }
    return int((await run(session, _ADD_ENTRY, row)).scalar_one())


async def minutes_on(session: AsyncSession, member_id: int, day: dt.date) -> int:
    result = await run(session, _MINUTES_ON, {"member_id": member_id, "day": day})
    return int(result.scalar_one())


@dataclass(frozen=True)
class DaySoFar:
    minutes: int  # the day's study minutes
    study_points: int  # the points the day's study has earned so far ("study" in the ledger)


async def day_so_far(session: AsyncSession, member_id: int, day: dt.date) -> DaySoFar:
    """What a check-in builds on, in one query: the day's minutes and study points so far."""
    params = {"member_id": member_id, "day": day}
    minutes, points = (await run(session, _DAY_SO_FAR, params)).one()
    return DaySoFar(int(minutes), int(points))


async def streak_until(session: AsyncSession, member_id: int, day: dt.date, goal: int) -> int:
    """Consecutive days at the goal ending on `day`, or on the day before when `day` is short."""
    horizon = day - dt.timedelta(days=STREAK_HORIZON_DAYS)
    params = {"member_id": member_id, "day": day, "horizon": horizon, "goal": goal}
    days = list((await run(session, _GOAL_DAYS, params)).scalars())
    expected = day if days and days[0] == day else day - dt.timedelta(days=1)
    streak = 0
    for goal_day in days:
        if goal_day != expected:
            break
        streak += 1
        expected -= dt.timedelta(days=1)
    return streak
