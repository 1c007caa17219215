"""The fetch job of each material's file (`MaterialFile`): queued with the material, leased
by a fetcher (`data.leases`), settled as stored or failed, retried on demand."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data import leases
from data.models import FetchState, Material, MaterialFile


def enqueue(session: AsyncSession, found: Sequence[Material], at: dt.datetime) -> None:
    """A fetch for each material (flushed, so with an id), due at once."""
    for material in found:
        assert material.id is not None
        session.add(MaterialFile(material_id=material.id, due_at=at))


async def claim_due(
    session: AsyncSession, now: dt.datetime, limit: int, lease: dt.timedelta
) -> list[tuple[MaterialFile, Material]]:
    """Lease up to `limit` due fetches, oldest first, with their materials."""
    files = await leases.claim(session, MaterialFile, now, limit, lease)
    if not files:
        return []
    ids = [file.material_id for file in files]
    found = {m.id: m for m in await session.exec(select(Material).where(col(Material.id).in_(ids)))}
    return [(file, found[file.material_id]) for file in files]


async def stored_copy(session: AsyncSession, material: Material) -> MaterialFile | None:
    """A stored file of another material with the same platform reference (the same media
    sent twice): its file is this one's too, without fetching it again."""
    statement = (
        select(MaterialFile)
        .join(Material, col(Material.id) == MaterialFile.material_id)
        .where(
            Material.channel == material.channel,
            Material.reference == material.reference,
            MaterialFile.state == FetchState.STORED.value,
        )
        .limit(1)
    )
    return (await session.exec(statement)).first()


async def retry_failed(
    session: AsyncSession, now: dt.datetime, sent_since: dt.datetime | None = None
) -> int:
    """Failed fetches (of materials sent since `sent_since`, when given) pending again with
    their tries reset, due now; how many."""
    statement = update(MaterialFile).where(col(MaterialFile.state) == FetchState.FAILED.value)
    if sent_since is not None:
        recent = select(Material.id).where(col(Material.created_at) >= sent_since)
        statement = statement.where(col(MaterialFile.material_id).in_(recent))
    result = await session.exec(  # type: ignore[call-overload]
        statement.values(state=FetchState.PENDING.value, attempts=0, due_at=now, done_at=None)
    )
    return int(result.rowcount or 0)


async def file_of(session: AsyncSession, material_id: int) -> MaterialFile | None:
    statement = select(MaterialFile).where(MaterialFile.material_id == material_id)
    return (await session.exec(statement)).first()


async def counts(session: AsyncSession) -> dict[str, int]:
    """How many fetches are in each state."""
    statement = select(MaterialFile.state, func.count()).group_by(col(MaterialFile.state))
    return {str(state): int(count) for state, count in await session.exec(statement)}
