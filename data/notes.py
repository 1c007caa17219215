"""Study notes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.models import Note


async def add_note(
    session: AsyncSession, member_id: int, text: str, chars: int, day: dt.date, at: dt.datetime
) -> Note:
    """Save a note; `chars` is its counted length (handlers.notes.counted_chars)."""
    note = Note(member_id=member_id, text=text, chars=chars, day=day, created_at=at)
    session.add(note)
    await session.flush()
    return note


async def chars_between(
    session: AsyncSession, member_id: int, first: dt.date, last: dt.date
) -> int:
    statement = select(func.coalesce(func.sum(Note.chars), 0)).where(
        Note.member_id == member_id, Note.day >= first, Note.day <= last
    )
    return int((await session.exec(statement)).one())
