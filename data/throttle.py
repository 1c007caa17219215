"""Counted events for rate limits that hold across server processes (rows, not memory)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import bindparam, delete, func, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from data.db import run
from data.models import Throttle
from data.planned import planned

_THROTTLE = Throttle.__table__  # type: ignore[attr-defined]
# Asked on every sign-in: built once, run as Core (data.db.run).
_COUNT_SINCE = select(func.count()).where(
    _THROTTLE.c.scope == bindparam("scope"),
    _THROTTLE.c.key == bindparam("key"),
    _THROTTLE.c.at >= bindparam("since"),
)
_COUNT_SINCE = planned(_COUNT_SINCE)


async def count_since(session: AsyncSession, scope: str, key: str, since: dt.datetime) -> int:
    params = {"scope": scope, "key": key[:200], "since": since}
    return int((await run(session, _COUNT_SINCE, params)).scalar_one())


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
