"""Why `qiyi push` enqueued nothing (or nothing to send now), in words for the operator."""

from __future__ import annotations

import datetime as dt

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock, today
from bot.pushes import ARTICLE_PUSHES, Enqueued, due_time
from bot.settings import Settings
from data import audience, push_status
from data.models import PushKind

NOBODY = "no member can be reached: nobody has bound a chat account (or all have unfollowed)"


def _at(moment: dt.datetime, settings: Settings) -> str:
    return moment.astimezone(settings.zone).strftime("%Y-%m-%d %H:%M")


async def explain(
    session: AsyncSession, settings: Settings, clock: Clock, enqueued: Enqueued
) -> list[str]:
    """One line per reason nothing is due: why nothing was enqueued, or when what was
    enqueued will go (the quiet hours defer it). Empty when it is due now."""
    now = clock.now()
    if enqueued.count:
        due = due_time(settings, now)
        if due <= now:
            return []
        return [
            f"due at {_at(due, settings)}, after the quiet hours"
            f" (QIYI_QUIET_HOURS={settings.quiet_hours}): nothing to send before then"
        ]
    if enqueued.kind is PushKind.REMINDER:
        return [await _no_reminder(session, settings, clock)]
    if enqueued.kind in ARTICLE_PUSHES:
        return [await _no_article(session, settings, clock, enqueued)]
    if not await audience.staff(session):
        return ["no admin or secretary can be reached (the reports go to them)"]
    return [f"the report of {enqueued.subject} was enqueued already"]


async def _no_reminder(session: AsyncSession, settings: Settings, clock: Clock) -> str:
    now = clock.now().astimezone(settings.zone)
    goal = settings.daily_goal_minutes
    counts = await push_status.reminder_counts(
        session, today(clock), now.time().replace(tzinfo=None), settings.reminder_time, goal
    )
    if not counts.reachable:
        return NOBODY
    if not counts.enabled:
        return "every member who can be reached has turned the reminder off (提醒 关闭)"
    if not counts.time_come:
        earliest = counts.earliest or settings.reminder_time
        return (
            f"the reminder time has not come: it is {now:%H:%M}, the earliest reminder is at"
            f" {earliest:%H:%M} (QIYI_REMINDER_TIME={settings.reminder_time:%H:%M},"
            " or a member's own 提醒 time)"
        )
    if not counts.below_goal:
        return f"everyone whose reminder time has come is at today's goal ({goal} minutes)"
    return (
        f"the {counts.below_goal} members due were reminded today already"
        " (one reminder a member a day)"
    )


async def _no_article(
    session: AsyncSession, settings: Settings, clock: Clock, enqueued: Enqueued
) -> str:
    noun = enqueued.kind.value
    if enqueued.subject:  # an article was there to push: the audience was not
        if not await push_status.reachable_count(session):
            return NOBODY
        return f"《{enqueued.subject}》 was enqueued already"
    state = await push_status.article_state(session, ARTICLE_PUSHES[enqueued.kind], clock.now())
    if not state.any:
        return f"no {noun} in the database (`qiyi content sync` loads them)"
    coming, then = state.next_published, ""
    if coming is not None:
        then = f"; the next, 《{coming.title}》, is published {_at(coming.publish_at, settings)}"
    last = state.last_pushed
    if last is None or last.pushed_at is None:
        return f"no {noun} is published yet{then}"
    return (
        f"nothing new published: the last {noun}, 《{last.title}》, was pushed"
        f" {_at(last.pushed_at, settings)}{then}"
    )
