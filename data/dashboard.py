"""The console's overview: today's study and what waits, for one branch or all."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import case, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.models import (
    DeliveryAttempt,
    Member,
    OutboxItem,
    ReviewState,
    StudyEntry,
    VolunteerEntry,
)


@dataclass(frozen=True)
class Today:
    members: int  # in the scope, not left
    studied: int  # members who checked in today
    at_goal: int  # members whose day reached the goal
    minutes: int
    pending_reviews: int
    pushes: dict[str, int]  # outbox items of today by state


async def today(session: AsyncSession, day: dt.date, goal: int, branch_id: int | None) -> Today:
    """Aggregates done by the database: a few indexed queries, whatever the roster's size."""
    members = select(Member.id).where(col(Member.left_on).is_(None))
    if branch_id is not None:
        members = members.where(Member.branch_id == branch_id)
    in_scope = col(StudyEntry.member_id).in_(members)
    per_member = (
        select(StudyEntry.member_id, func.sum(StudyEntry.minutes).label("minutes"))
        .where(StudyEntry.day == day, in_scope)
        .group_by(col(StudyEntry.member_id))
        .subquery()
    )
    studied, at_goal, minutes = (
        await session.exec(
            select(
                func.count(),
                func.coalesce(func.sum(case((per_member.c.minutes >= goal, 1), else_=0)), 0),
                func.coalesce(func.sum(per_member.c.minutes), 0),
            ).select_from(per_member)
        )
    ).one()
    roster = (await session.exec(select(func.count()).select_from(members.subquery()))).one()
    reviews = (
        await session.exec(
            select(func.count())
            .select_from(VolunteerEntry)
            .where(
                VolunteerEntry.state == ReviewState.PENDING.value,
                col(VolunteerEntry.member_id).in_(members),
            )
        )
    ).one()
    states = await session.exec(
        select(OutboxItem.state, func.count())
        .where(OutboxItem.day == day, col(OutboxItem.member_id).in_(members))
        .group_by(col(OutboxItem.state))
    )
    return Today(
        int(roster),
        int(studied),
        int(at_goal),
        int(minutes),
        int(reviews),
        {state: int(n) for state, n in states},
    )


@dataclass(frozen=True)
class Alert:
    """A configuration error the platform answered today's pushes with (40164: the server's
    IP is not whitelisted, 48001: no permission for the API …): no push goes until fixed."""

    errcode: int
    times: int
    last_at: dt.datetime


async def configuration_alerts(
    session: AsyncSession, day: dt.date, errcodes: frozenset[int]
) -> list[Alert]:
    """Today's delivery attempts that failed with one of `errcodes`, per errcode."""
    statement = (
        select(DeliveryAttempt.errcode, func.count(), func.max(DeliveryAttempt.at))
        .join(OutboxItem, col(OutboxItem.id) == DeliveryAttempt.outbox_id)
        .where(OutboxItem.day == day, col(DeliveryAttempt.errcode).in_(errcodes))
        .group_by(col(DeliveryAttempt.errcode))
        .order_by(col(DeliveryAttempt.errcode))
    )
    return [
        Alert(int(errcode), int(times), last_at)
        for errcode, times, last_at in await session.exec(statement)
    ]
