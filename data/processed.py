"""The processed-message table: inserting the key is the dedupe of platform retries."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.models import ProcessedMessage


class AlreadyProcessed(Exception):
    """The same message (channel, key) was handled before, or is being handled now."""


async def claim(session: AsyncSession, channel: str, key: str, at: dt.datetime) -> ProcessedMessage:
    """Insert the message's key in the current transaction, or raise `AlreadyProcessed`.

    A concurrent duplicate waits on the unique index until the first transaction ends,
    so the platform's retry is counted once across processes.
    """
    record = ProcessedMessage(channel=channel, key=key, created_at=at)
    try:
        async with session.begin_nested():
            session.add(record)
    except IntegrityError:
        raise AlreadyProcessed(key) from None
    return record


async def stored_reply(session: AsyncSession, channel: str, key: str) -> str | None:
    statement = select(ProcessedMessage.reply).where(
        ProcessedMessage.channel == channel, ProcessedMessage.key == key
    )
    return (await session.exec(statement)).first()
