"""How points are earned: the rules of `content/rules.toml` applied to the ledger."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.rules import PointsRules
from content.texts import render
from data import points, study


@dataclass(frozen=True)
class StudyProgress:
    day: dt.date
    minutes: int
    goal: int
    streak: int
    points_gained: int

    @property
    def reached(self) -> bool:
        return self.minutes >= self.goal

    @property
    def remaining(self) -> int:
        return max(0, self.goal - self.minutes)


async def _award(
    session: AsyncSession,
    member_id: int,
    amount: int,
    source: str,
    ref: str,
    day: dt.date,
    at: dt.datetime,
    **reason: object,
) -> int:
    text = render("ledger_reason", source=source, day=day, **reason)
    done = await points.award(
        session, member_id, amount, source=source, ref=ref, reason=text, day=day, at=at
    )
    return amount if done else 0


async def for_study(
    session: AsyncSession,
    rules: PointsRules,
    goal: int,
    member_id: int,
    day: dt.date,
    entry_id: int,
    so_far: study.DaySoFar,
    at: dt.datetime,
) -> StudyProgress:
    """Award what the day's study now earns (blocks, goal bonus, streak bonus), once each;
    `so_far` holds the day's total with the new entry, and its study points before it."""
    minutes = so_far.minutes
    owed = min(rules.study_daily_cap, minutes // rules.study_block_minutes * rules.study_points)
    gained = await _award(
        session,
        member_id,
        owed - so_far.study_points,
        "study",
        f"study:{entry_id}",
        day,
        at,
        minutes=minutes,
    )
    streak = await study.streak_until(session, member_id, day, goal)
    if minutes >= goal:
        gained += await _award(
            session, member_id, rules.goal_bonus, "goal", f"goal:{day}", day, at, minutes=minutes
        )
        gained += await _streak_bonus(session, rules, member_id, day, streak, at)
    return StudyProgress(day, minutes, goal, streak, gained)


async def _streak_bonus(
    session: AsyncSession,
    rules: PointsRules,
    member_id: int,
    day: dt.date,
    streak: int,
    at: dt.datetime,
) -> int:
    if not streak or streak % rules.streak_days:
        return 0
    return await _award(
        session, member_id, rules.streak_bonus, "streak", f"streak:{day}", day, at, streak=streak
    )


async def for_later_streaks(
    session: AsyncSession,
    rules: PointsRules,
    goal: int,
    member_id: int,
    after: dt.date,
    until: dt.date,
    at: dt.datetime,
) -> int:
    """A day filled in late can complete streaks that end on the days after it: pay those."""
    gained = 0
    day = after + dt.timedelta(days=1)
    while day <= until:
        if await study.minutes_on(session, member_id, day) < goal:
            break
        streak = await study.streak_until(session, member_id, day, goal)
        gained += await _streak_bonus(session, rules, member_id, day, streak, at)
        day += dt.timedelta(days=1)
    return gained


async def for_volunteer(
    session: AsyncSession,
    rules: PointsRules,
    member_id: int,
    entry_id: int,
    minutes: int,
    day: dt.date,
    at: dt.datetime,
) -> int:
    amount = minutes // 30 * rules.volunteer_per_hour // 2
    return await _award(
        session, member_id, amount, "volunteer", f"volunteer:{entry_id}", day, at, minutes=minutes
    )


async def for_quiz(
    session: AsyncSession,
    rules: PointsRules,
    member_id: int,
    article_id: int,
    title: str,
    day: dt.date,
    at: dt.datetime,
) -> int:
    return await _award(
        session, member_id, rules.quiz_correct, "quiz", f"quiz:{article_id}", day, at, title=title
    )


def article_ref(day: dt.date) -> str:
    """The ledger reference of the weekly-article bonus: one per ISO week."""
    year, week, _ = day.isocalendar()
    return f"article:{year}-W{week:02d}"


async def for_note(
    session: AsyncSession,
    rules: PointsRules,
    member_id: int,
    chars: int,
    day: dt.date,
    at: dt.datetime,
) -> int:
    gained = 0
    if chars >= rules.note_min_chars:
        gained += await _award(
            session, member_id, rules.note_points, "note", f"note:{day}", day, at, chars=chars
        )
    if chars >= rules.article_min_chars:
        gained += await _award(
            session,
            member_id,
            rules.article_bonus,
            "article",
            article_ref(day),
            day,
            at,
            chars=chars,
        )
    return gained
