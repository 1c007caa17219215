"""The append-only points ledger and the sums read from it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import bindparam, case, func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.db import insert_new, run
from data.limits import shortened
from data.models import PointsEntry
from data.planned import planned

REASON_LIMIT = 200  # PointsEntry.reason


async def award(
    session: AsyncSession,
    member_id: int,
    points: int,
    *,
    source: str,
    ref: str,
    reason: str,
    day: dt.date,
    at: dt.datetime,
) -> bool:
    """Append an award; False (and nothing written) when this (source, ref) was awarded before."""
    if points <= 0:
        return False
    row = {
        "member_id": member_id,
        "points": points,
        "source": source,
        "ref": ref,
        "reason": shortened(reason, REASON_LIMIT),  # it names a lesson, up to 200 characters
        "day": day,
        "created_at": at,
    }
    return bool(await insert_new(session, PointsEntry, [row], ["member_id", "source", "ref"]))


_LEDGER = PointsEntry.__table__  # type: ignore[attr-defined]
_OF_MEMBER = _LEDGER.c.member_id == bindparam("member_id")
_SINCE = func.coalesce(
    func.sum(case((_LEDGER.c.day >= bindparam("since"), _LEDGER.c.points), else_=0)), 0
)
_CARD = select(_LEDGER.c.source, func.sum(_LEDGER.c.points), _SINCE).where(_OF_MEMBER)
_CARD = _CARD.group_by(_LEDGER.c.source)
_CARD = planned(_CARD)


@dataclass(frozen=True)
class Card:
    """A member's points card: the lifelong total, the total since a day, and by source."""

    total: int
    since: int
    sources: dict[str, int]


async def card(session: AsyncSession, member_id: int, since: dt.date) -> Card:
    """The points card in one query."""
    rows = (await run(session, _CARD, {"member_id": member_id, "since": since})).all()
    sources = {source: int(points) for source, points, _ in rows}
    return Card(sum(sources.values()), sum(int(recent) for _, _, recent in rows), sources)


async def has_award(session: AsyncSession, member_id: int, source: str, ref: str) -> bool:
    statement = select(PointsEntry.id).where(
        PointsEntry.member_id == member_id, PointsEntry.source == source, PointsEntry.ref == ref
    )
    return (await session.exec(statement)).first() is not None
