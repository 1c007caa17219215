"""WeCom's limits on app messages, counted in the database so they hold across dispatcher
processes and restarts: per member 30 a minute and 1,000 an hour, and the app's daily cap
(person-times since local midnight). WeCom drops the excess without an error, so nothing may
be sent without a counted slot.

A dispatcher reserves slots when it claims a batch — one `Throttle` row (scope `wecom-send`,
key the member id) per message it may send — checked and written in the claim's
transaction, under a lock that serialises reservations (an advisory lock on PostgreSQL;
SQLite's writers are serial already). After the round, the slots not used — no WeCom message
sent, or one WeCom refused — are released; a slot whose send may have reached the member (an
answer lost) stays counted. A dispatcher killed mid-round leaves its slots counted: the
limits are never exceeded, at the cost of a slot or two.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import delete, func, insert, text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.models import Throttle

SCOPE = "wecom-send"
MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
KEEP = dt.timedelta(days=2)  # the nightly clean-up forgets older counts (none still counts)
_LOCK_KEY = 0x5157_4543  # "QWEC": the advisory lock serialising reservations


@dataclass(frozen=True)
class Limits:
    per_minute: int
    per_hour: int
    per_day: int


@dataclass
class Slots:
    """What one claim reserved: the slot rows by member, when a member's next slot frees
    (members at their minute or hour limit), and whether the daily cap left some out."""

    granted: dict[int, list[int]] = field(default_factory=dict)
    frees_at: dict[int, dt.datetime] = field(default_factory=dict)
    capped: set[int] = field(default_factory=set)


def _frees_at(sent: list[dt.datetime], limit: int, window: dt.timedelta) -> dt.datetime | None:
    """When one more send fits `limit` per trailing `window`, given the sends in it (oldest
    first); None when one fits now."""
    if len(sent) < limit:
        return None
    return sent[len(sent) - limit] + window


async def _lock(session: AsyncSession) -> None:
    if session.get_bind().dialect.name == "postgresql":
        await session.exec(text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=_LOCK_KEY))  # type: ignore[call-overload]


async def sent_today(session: AsyncSession, day_start: dt.datetime) -> int:
    statement = select(func.count()).where(Throttle.scope == SCOPE, col(Throttle.at) >= day_start)
    return int((await session.exec(statement)).one())


async def reserve(
    session: AsyncSession,
    wanted: Mapping[int, int],
    now: dt.datetime,
    day_start: dt.datetime,
    limits: Limits,
) -> Slots:
    """Reserve up to `wanted[member]` slots for each member (in the mapping's order), within
    the member's minute and hour limits and the day's cap; in the caller's transaction."""
    slots = Slots()
    if not wanted:
        return slots
    await _lock(session)
    left_today = limits.per_day - await sent_today(session, day_start)
    recent = (
        select(Throttle.key, Throttle.at)
        .where(
            Throttle.scope == SCOPE,
            col(Throttle.key).in_([str(member) for member in wanted]),
            col(Throttle.at) > now - HOUR,
        )
        .order_by(col(Throttle.at))
    )
    sent: dict[int, list[dt.datetime]] = {}
    for key, at in await session.exec(recent):
        sent.setdefault(int(key), []).append(at)
    rows: list[tuple[int, int]] = []  # (member, how many)
    for member, count in wanted.items():
        hour = sent.get(member, [])
        minute = [at for at in hour if at > now - MINUTE]
        room = min(limits.per_minute - len(minute), limits.per_hour - len(hour))
        if room <= 0:
            frees = [
                at
                for at in (
                    _frees_at(minute, limits.per_minute, MINUTE),
                    _frees_at(hour, limits.per_hour, HOUR),
                )
                if at is not None
            ]
            slots.frees_at[member] = max(frees) if frees else now + MINUTE
            continue
        if left_today <= 0:
            slots.capped.add(member)
            continue
        granted = min(room, count, left_today)
        left_today -= granted
        rows.append((member, granted))
        if granted < count:  # some of what the member's pushes may need is not granted
            if granted == room:
                slots.frees_at[member] = now + MINUTE  # looked at again a minute later
            else:
                slots.capped.add(member)
    if rows:
        params = [
            {"scope": SCOPE, "key": str(member), "at": now} for member, n in rows for _ in range(n)
        ]
        statement = insert(Throttle).returning(col(Throttle.id), col(Throttle.key))
        result = await session.exec(statement, params=params)  # type: ignore[call-overload]
        for row_id, key in result:
            slots.granted.setdefault(int(key), []).append(int(row_id))
    return slots


async def release(session: AsyncSession, slot_ids: Sequence[int]) -> None:
    """Give back slots no message used (nothing sent, or WeCom refused the send)."""
    if slot_ids:
        await session.exec(delete(Throttle).where(col(Throttle.id).in_(sorted(slot_ids))))  # type: ignore[call-overload]
