"""The processed-message table: inserting the key is the dedupe of platform retries."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.db import insert_new
from data.models import ProcessedMessage


class AlreadyProcessed(Exception):
    """The same message (channel, key) was handled before, or is being handled now."""


async def claim(session: AsyncSession, channel: str, key: str, at: dt.datetime) -> int:
    """Insert the message's key in the current transaction (its row id), or raise
    `AlreadyProcessed`.

    A concurrent duplicate waits on the unique index until the first transaction ends,
    so the platform's retry is counted once across processes.
    """
    row = {"channel": channel, "key": key, "reply": "", "created_at": at}
    inserted = await insert_new(session, ProcessedMessage, [row], ["channel", "key"])
    if not inserted:
        raise AlreadyProcessed(key)
    return inserted[0]


async def keep_reply(session: AsyncSession, row_id: int, reply: str) -> None:
    """What was answered, for a retry of the same message."""
    await session.exec(
        update(ProcessedMessage).where(col(ProcessedMessage.id) == row_id).values(reply=reply)
    )


async def stored_reply(session: AsyncSession, channel: str, key: str) -> str | None:
    statement = select(ProcessedMessage.reply).where(
        ProcessedMessage.channel == channel, ProcessedMessage.key == key
    )
    return (await session.exec(statement)).first()
