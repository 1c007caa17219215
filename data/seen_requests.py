"""Plain-mode WeChat requests seen within the replay window: in plain mode the body is not
signed (the signature covers the token, timestamp and nonce), so a captured query string
could carry any body. Each (timestamp, nonce) pair is accepted with one body only."""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import bindparam, delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.db import insert_new, run
from data.models import SeenRequest
from data.planned import planned

UNIQUE = ["channel", "timestamp", "nonce"]

_STORED_HASH = select(SeenRequest.body_hash).where(
    SeenRequest.channel == bindparam("channel"),
    SeenRequest.timestamp == bindparam("timestamp"),
    SeenRequest.nonce == bindparam("nonce"),
)
_STORED_HASH = planned(_STORED_HASH)


def body_hash(body: bytes | str) -> str:
    """SHA-256 of the message (hex), what a pair is remembered with."""
    return hashlib.sha256(body.encode() if isinstance(body, str) else body).hexdigest()


async def remember(
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

    Run in the message's own transaction, first (no transaction of its own: on SQLite that
    was a fifth of a message's time, on PostgreSQL a commit and its WAL flush). The unique
    constraint decides, not a read first: of two requests with one pair arriving at once in
    two processes, one inserts and the other waits for its transaction, then compares; a
    message that is rolled back leaves no pair, and nothing else of it either.
    """
    row = {"channel": channel, "timestamp": timestamp, "nonce": nonce}
    new = row | {"body_hash": digest, "created_at": at}
    if await insert_new(session, SeenRequest, [new], UNIQUE):
        return True
    stored = (await run(session, _STORED_HASH, row)).scalar_one_or_none()
    return stored == digest


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
