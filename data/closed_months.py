"""Closed months (关账): the figures of a month frozen when it was closed."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import asdict

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.db import run
from data.figures import MemberFigures
from data.models import ClosedMonth, FrozenBranchScore


async def closed(session: AsyncSession, month: dt.date) -> ClosedMonth | None:
    """The closing of the month starting on `month`; None while it is open."""
    return await session.get(ClosedMonth, month)


async def closed_among(session: AsyncSession, months: Sequence[dt.date]) -> set[dt.date]:
    """Which of these months (their first days) are closed."""
    statement = select(ClosedMonth.month).where(col(ClosedMonth.month).in_(months))
    return set(await session.exec(statement))


async def frozen_scores(session: AsyncSession, month: dt.date) -> list[FrozenBranchScore]:
    """The branches' frozen scores in the order they were ranked."""
    statement = (
        select(FrozenBranchScore)
        .where(FrozenBranchScore.month == month)
        .order_by(col(FrozenBranchScore.id))
    )
    return list(await session.exec(statement))


def frozen_members(closing: ClosedMonth) -> list[MemberFigures]:
    return [MemberFigures(**person) for person in json.loads(closing.figures)["members"]]


def frozen_weights(closing: ClosedMonth) -> dict[str, float]:
    return dict(json.loads(closing.figures)["weights"])


async def freeze(
    session: AsyncSession,
    closing: ClosedMonth,
    scores: Sequence[FrozenBranchScore],
    members: Sequence[MemberFigures],
    weights: dict[str, float],
) -> None:
    """Store the month's closing and figures (`scores` ranked), in the caller's transaction.
    Closing a month twice at once fails on the closing's primary key."""
    closing.figures = json.dumps(
        {"weights": weights, "members": [asdict(person) for person in members]},
        ensure_ascii=False,
    )
    session.add(closing)
    await session.flush()
    for row in scores:  # one at a time: the ids keep the ranked order
        session.add(row)
        await session.flush()


async def reopen(session: AsyncSession, month: dt.date) -> None:
    """Drop the month's frozen figures and its closing, in the caller's transaction."""
    await run(session, delete(FrozenBranchScore).where(col(FrozenBranchScore.month) == month))
    await run(session, delete(ClosedMonth).where(col(ClosedMonth.month) == month))
