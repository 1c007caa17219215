"""Plain-mode WeChat requests seen within the replay window: in plain mode the body is not
signed (the signature covers the token, timestamp and nonce), so a captured query string
could carry any body. Each (timestamp, nonce) pair is accepted with one body only."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from sqlalchemy import bindparam, delete
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.db import Sessions, insert_new, run, transaction
from data.models import SeenRequest

UNIQUE = ["channel", "timestamp", "nonce"]

_STORED_HASH = select(SeenRequest.body_hash).where(
    SeenRequest.channel == bindparam("channel"),
    SeenRequest.timestamp == bindparam("timestamp"),
    SeenRequest.nonce == bindparam("nonce"),
)
_TABLE: Any = SeenRequest.__table__  # type: ignore[attr-defined]
_INSERT_ON_POSTGRESQL = postgresql.insert(_TABLE).on_conflict_do_nothing(index_elements=UNIQUE)


def body_hash(body: bytes | str) -> str:
    """SHA-256 of the message (hex), what a pair is remembered with."""
    return hashlib.sha256(body.encode() if isinstance(body, str) else body).hexdigest()


async def first_use(
    session: AsyncSession,
    channel: str,
    timestamp: int,
    nonce: str,
    digest: str,
    at: dt.datetime,
) -> bool:
    """Remember the pair with the body's `digest`; whether the request may go on: the pair is
    new, or was seen with the same body (the platform's retry, which the message dedupe then
    answers with the stored reply). False: the pair came before with another body.

    The unique constraint decides, not a read first: of two requests with one pair arriving
    at once in two processes, one inserts and the other waits for it, then compares.
    """
    row = {"channel": channel, "timestamp": timestamp, "nonce": nonce}
    new = row | {"body_hash": digest, "created_at": at}
    if await insert_new(session, SeenRequest, [new], UNIQUE):
        return True
    stored = (await run(session, _STORED_HASH, row)).scalar_one_or_none()
    return stored == digest


async def remember(
    sessions: Sessions,
    channel: str,
    timestamp: int,
    nonce: str,
    digest: str,
    at: dt.datetime,
) -> bool:
    """`first_use` before the message's own transaction, as cheaply as the database allows.

    On PostgreSQL the insert and the look-up on a conflict are one statement each, run
    without a transaction around them (autocommit): the insert is atomic on its own, and a
    concurrent one with the same pair waits for it, then sees it. That saves BEGIN and
    COMMIT, two of the three round trips (measured by bench/webhook_nonces.py). On SQLite
    a transaction of its own, in the writer queue every write takes there.
    """
    engine = sessions.kw.get("bind")
    if isinstance(engine, AsyncEngine) and engine.dialect.name == "postgresql":
        row = {"channel": channel, "timestamp": timestamp, "nonce": nonce}
        async with engine.connect() as connection:
            auto = await connection.execution_options(isolation_level="AUTOCOMMIT")
            new = row | {"body_hash": digest, "created_at": at}
            inserted = await auto.execute(_INSERT_ON_POSTGRESQL, new)
            if inserted.rowcount:
                return True
            stored = (await auto.execute(_STORED_HASH, row)).scalar_one_or_none()
            return stored == digest
    async with transaction(sessions) as session:
        return await first_use(session, channel, timestamp, nonce, digest, at)


async def forget_older(session: AsyncSession, before: dt.datetime, limit: int) -> int:
    """Delete up to `limit` of the pairs remembered before `before`, oldest first; how many."""
    oldest = (
        select(SeenRequest.id)
        .where(col(SeenRequest.created_at) < before)
        .order_by(col(SeenRequest.id))
        .limit(limit)
    )
    result = await run(session, delete(SeenRequest).where(col(SeenRequest.id).in_(oldest)))
    return int(result.rowcount)  # type: ignore[attr-defined]
