"""Counted events for rate limits that hold across server processes (rows, not memory)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.models import Throttle


async def count_since(session: AsyncSession, scope: str, key: str, since: dt.datetime) -> int:
    statement = select(func.count()).where(
        Throttle.scope == scope, Throttle.key == key[:200], col(Throttle.at) >= since
    )
    return int((await session.exec(statement)).one())


def note(session: AsyncSession, scope: str, key: str, at: dt.datetime) -> None:
    session.add(Throttle(scope=scope, key=key[:200], at=at))


async def allowed(
    session: AsyncSession,
    scope: str,
    key: str,
    *,
    limit: int,
    window: dt.timedelta,
    at: dt.datetime,
) -> bool:
    """Whether one more event of `key` fits `limit` per `window`; if so, it is counted."""
    if await count_since(session, scope, key, at - window) >= limit:
        return False
    note(session, scope, key, at)
    return True


async def forget_before(session: AsyncSession, before: dt.datetime) -> int:
    result = await session.exec(delete(Throttle).where(col(Throttle.at) < before))  # type: ignore[call-overload]
    return int(result.rowcount or 0)
