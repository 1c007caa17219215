"""Uploaded rosters waiting for 确认导入 in the console: each usable by the one who uploaded
it, for `LIFETIME`, once."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.db import run
from data.models import RosterDraft

LIFETIME = dt.timedelta(minutes=30)
ID_PATTERN = r"[A-Za-z0-9_-]{32}"  # what `secrets.token_urlsafe(24)` gives


async def create(
    session: AsyncSession, member_id: int, file_name: str, content: str, at: dt.datetime
) -> str:
    """Store a draft; its id, random and unguessable."""
    draft_id = secrets.token_urlsafe(24)
    session.add(
        RosterDraft(
            id=draft_id,
            member_id=member_id,
            created_at=at,
            file_name=file_name[:100],
            content=content,
        )
    )
    await session.flush()
    return draft_id


async def find(session: AsyncSession, draft_id: str, member_id: int) -> RosterDraft | None:
    """The member's own draft, expired or not (the caller tells them apart)."""
    statement = select(RosterDraft).where(
        RosterDraft.id == draft_id, RosterDraft.member_id == member_id
    )
    return (await session.exec(statement)).first()


def expired(draft: RosterDraft, at: dt.datetime) -> bool:
    return draft.created_at <= at - LIFETIME


async def take(session: AsyncSession, draft_id: str, member_id: int, at: dt.datetime) -> bool:
    """Use the member's unexpired draft up: deleted in the caller's transaction, so that of
    two confirmations only one finds it."""
    statement = delete(RosterDraft).where(
        col(RosterDraft.id) == draft_id,
        col(RosterDraft.member_id) == member_id,
        col(RosterDraft.created_at) > at - LIFETIME,
    )
    result = await run(session, statement)
    return int(result.rowcount) == 1  # type: ignore[attr-defined]
