"""Why a push found nobody: the counts behind `qiyi push`'s explanation, in SQL."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Integer, Time, case, func, literal
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.audience import _reachable
from data.models import Article, ArticleKind, Member, StudyEntry


@dataclass(frozen=True)
class ReminderCounts:
    """Members narrowed step by step the way `audience.reminder_due` narrows them."""

    reachable: int  # with a chat account that still follows
    enabled: int  # … and the reminder on
    time_come: int  # … and their reminder time (own or the default) come
    below_goal: int  # … and below today's goal
    earliest: dt.time | None  # the earliest reminder time among `enabled`


async def reachable_count(session: AsyncSession) -> int:
    statement = select(func.count()).select_from(Member).where(_reachable())
    return int((await session.exec(statement)).one())


async def reminder_counts(
    session: AsyncSession, day: dt.date, at: dt.time, default_time: dt.time, goal: int
) -> ReminderCounts:
    today = (
        select(StudyEntry.member_id, func.sum(StudyEntry.minutes).label("minutes"))
        .where(StudyEntry.day == day)
        .group_by(col(StudyEntry.member_id))
        .subquery()
    )
    enabled = col(Member.reminder_enabled).is_(True)
    reminder_at = func.coalesce(Member.reminder_time, literal(default_time, Time))
    come = enabled & (reminder_at <= literal(at, Time))
    below = come & (func.coalesce(today.c.minutes, 0) < goal)

    def how_many(condition):  # type: ignore[no-untyped-def]
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0).cast(Integer)

    statement = (
        select(
            func.count(),
            how_many(enabled),
            how_many(come),
            how_many(below),
            func.min(case((enabled, reminder_at), else_=None)),
        )
        .select_from(Member)
        .outerjoin(today, today.c.member_id == Member.id)
        .where(_reachable())
    )
    reachable, on, time_come, below_goal, earliest = (await session.exec(statement)).one()
    if isinstance(earliest, str):  # SQLite gives the MIN of a time column back as text
        earliest = dt.time.fromisoformat(earliest)
    return ReminderCounts(int(reachable), int(on), int(time_come), int(below_goal), earliest)


@dataclass(frozen=True)
class ArticleState:
    """Where the lessons (or the news) stand at a moment."""

    any: bool  # is there any at all
    last_pushed: Article | None
    next_published: Article | None  # the first one whose publish_at is still to come


async def article_state(session: AsyncSession, kind: ArticleKind, now: dt.datetime) -> ArticleState:
    of_kind = Article.kind == kind.value
    last = (
        select(Article)
        .where(of_kind, col(Article.pushed_at).is_not(None))
        .order_by(col(Article.pushed_at).desc(), col(Article.id).desc())
        .limit(1)
    )
    upcoming = (
        select(Article)
        .where(of_kind, Article.publish_at > now)
        .order_by(col(Article.publish_at), col(Article.id))
        .limit(1)
    )
    count = select(func.count()).select_from(Article).where(of_kind)
    return ArticleState(
        any=int((await session.exec(count)).one()) > 0,
        last_pushed=(await session.exec(last)).first(),
        next_published=(await session.exec(upcoming)).first(),
    )
