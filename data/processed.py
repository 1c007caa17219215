"""The processed-message table: inserting the key is the dedupe of platform retries."""

from __future__ import annotations

import datetime as dt

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.db import insert_new
from data.models import ProcessedMessage


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
