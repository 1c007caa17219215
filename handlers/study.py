"""Study time: `学习`/`打卡` today, `补卡` for yesterday until noon, `今日`/`进度`."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlmodel.ext.asyncio.session import AsyncSession

from bot import awards
from bot.clock import Clock
from bot.router import UsageError
from bot.rules import PointsRules
from bot.settings import Settings
from content.texts import render
from data import study
from data.models import Member
from handlers import router
from handlers.amounts import Amount, parse_amount

ENTRY_MINUTES = range(1, 241)
DAY_MINUTES = 24 * 60
NOTE_LIMIT = 200
# The amount and its unit, and the note after it.
ARGS_LIMIT = NOTE_LIMIT + 40
BACKFILL_UNTIL_HOUR = 12


def parse_study(args: str) -> Amount:
    amount = parse_amount(args, bare="minutes")
    if amount is None:
        raise UsageError("study_amount")
    if amount.minutes not in ENTRY_MINUTES:
        raise UsageError("study_range", minutes=amount.minutes, most=ENTRY_MINUTES[-1])
    if len(amount.rest) > NOTE_LIMIT:
        raise UsageError("study_note_long", most=NOTE_LIMIT)
    return amount


async def _record(
    amount: Amount,
    member: Member,
    session: AsyncSession,
    clock: Clock,
    settings: Settings,
    rules: PointsRules,
    day: dt.date,
) -> awards.StudyProgress:
    assert member.id is not None
    before = await study.day_so_far(session, member.id, day)
    if before.minutes + amount.minutes > DAY_MINUTES:
        raise UsageError("study_day_full", recorded=before.minutes)
    entry_id = await study.add_entry(
        session, member.id, day, amount.minutes, amount.rest, clock.now()
    )
    goal = settings.daily_goal_minutes
    now = study.DaySoFar(before.minutes + amount.minutes, before.study_points)
    return await awards.for_study(session, rules, goal, member.id, day, entry_id, now, clock.now())


@router.command(
    "学习",
    "打卡",
    usage="学习 <时长> [备注]",
    summary="记录今天的学习，如：学习 30、学习 1.5小时、打卡 45 读《党章》",
    parse=parse_study,
    max_chars=ARGS_LIMIT,
)
async def check_in(
    args: Amount,
    member: Member,
    session: AsyncSession,
    clock: Clock,
    settings: Settings,
    rules: PointsRules,
    today: dt.date,
) -> str:
    progress = await _record(args, member, session, clock, settings, rules, today)
    return render("study_recorded", progress=progress, added=args.minutes, backfill=False)


@router.command(
    "补卡",
    usage="补卡 <时长> [备注]",
    summary="中午12点前补记昨天的学习",
    parse=parse_study,
    max_chars=ARGS_LIMIT,
)
async def backfill(
    args: Amount,
    member: Member,
    session: AsyncSession,
    clock: Clock,
    settings: Settings,
    rules: PointsRules,
    today: dt.date,
) -> str:
    if clock.now().hour >= BACKFILL_UNTIL_HOUR:
        return render("backfill_closed", hour=BACKFILL_UNTIL_HOUR)
    yesterday = today - dt.timedelta(days=1)
    joined = member.joined_at.astimezone(settings.zone).date()
    if yesterday < joined:  # no study can be owed for a day before the member belonged
        return render("backfill_before_joining", joined=joined)
    progress = await _record(args, member, session, clock, settings, rules, yesterday)
    assert member.id is not None
    later = await awards.for_later_streaks(
        session, rules, settings.daily_goal_minutes, member.id, yesterday, today, clock.now()
    )
    progress = dataclasses.replace(progress, points_gained=progress.points_gained + later)
    return render("study_recorded", progress=progress, added=args.minutes, backfill=True)


@router.command("今日", "进度", usage="今日", summary="查看今天的学习进度")
async def progress(
    member: Member, session: AsyncSession, settings: Settings, today: dt.date
) -> str:
    assert member.id is not None
    goal = settings.daily_goal_minutes
    minutes = await study.minutes_on(session, member.id, today)
    streak = await study.streak_until(session, member.id, today, goal)
    return render(
        "study_today",
        minutes=minutes,
        goal=goal,
        remaining=max(0, goal - minutes),
        streak=streak,
    )
