"""Database look-ups the tests assert on, shared by the test modules."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from bot.conversation import Conversation
from data import invitations, members
from data.db import transaction
from data.models import PointsEntry


async def member_id(conversation: Conversation, roster_id: str) -> int:
    async with conversation.sessions() as session:
        member = await members.member_by_roster_id(session, roster_id)
        assert member is not None and member.id is not None
        return member.id


async def count(conversation: Conversation, model: type[Any], *where: Any) -> int:
    async with conversation.sessions() as session:
        statement = select(func.count()).select_from(model).where(*where)
        return (await session.exec(statement)).one()


async def ledger(conversation: Conversation, roster_id: str) -> list[PointsEntry]:
    mid = await member_id(conversation, roster_id)
    async with conversation.sessions() as session:
        statement = (
            select(PointsEntry).where(PointsEntry.member_id == mid).order_by(col(PointsEntry.id))
        )
        return list(await session.exec(statement))


async def issue_code(conversation: Conversation, roster_id: str) -> str:
    """A fresh invitation code for the member, as `qiyi members invite` issues one."""
    mid = await member_id(conversation, roster_id)
    async with transaction(conversation.sessions) as session:
        return await invitations.issue(session, mid, conversation.clock.now())
