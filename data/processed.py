"""The processed-message table: inserting the key is the dedupe of platform retries."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.db import insert_new, run
from data.models import ProcessedMessage

# How long a message's key and reply are kept: far longer than any platform retries a
# message (WeChat three times within 15 seconds, the QQ bot within minutes), short enough
# that the table — a row and a reply per message — does not grow for ever.
KEEP = dt.timedelta(days=7)
PRUNE_BATCH = 5_000  # rows deleted per transaction: writers wait for one batch at most
# Kept a day longer than any channel could accept the same request again (clocks of other
# processes, and a replay window or OneBot event age set longer than usual).
MARGIN = dt.timedelta(days=1)


def retention(replay_horizon: dt.timedelta) -> dt.timedelta:
    """How long keys are kept: `KEEP`, or longer when a channel accepts a request that long
    after the first time (`bot.channels.freshness.replay_horizon`). A key forgotten earlier
    would let a captured request count again."""
    return max(KEEP, replay_horizon + MARGIN)


class AlreadyProcessed(Exception):
    """The same message (channel, key) was handled before, or is being handled now."""


async def record(
    session: AsyncSession, channel: str, key: str, reply: str, at: dt.datetime
) -> None:
    """Keep the message's key and its reply, as the last write of the message's transaction,
    or raise `AlreadyProcessed` (the caller rolls everything back and answers the stored reply).

    A concurrent duplicate waits on the unique index until the first transaction ends, so the
    platform's retry is counted once across processes. Written last, one statement does both
    the dedupe and the reply for a retry; a duplicate's work is undone by the rollback.
    """
    row = {"channel": channel, "key": key, "reply": reply, "created_at": at}
    if not await insert_new(session, ProcessedMessage, [row], ["channel", "key"]):
        raise AlreadyProcessed(key)


async def stored_reply(session: AsyncSession, channel: str, key: str) -> str | None:
    statement = select(ProcessedMessage.reply).where(
        ProcessedMessage.channel == channel, ProcessedMessage.key == key
    )
    return (await session.exec(statement)).first()


async def forget_older(session: AsyncSession, before: dt.datetime, limit: int = PRUNE_BATCH) -> int:
    """Delete up to `limit` of the records made before `before`, oldest first; how many."""
    oldest = (
        select(ProcessedMessage.id)
        .where(col(ProcessedMessage.created_at) < before)
        .order_by(col(ProcessedMessage.id))
        .limit(limit)
    )
    statement = delete(ProcessedMessage).where(col(ProcessedMessage.id).in_(oldest))
    result = await run(session, statement)
    return int(result.rowcount)  # type: ignore[attr-defined]
