"""What the binding tests share: talking as any chat account, codes, bindings, audit rows."""

from __future__ import annotations

import uuid
from typing import Literal

from sqlmodel import col, select

from bot.conversation import Conversation
from bot.messages import ContactWindow, Inbound, InboundKind, Sender
from data import members
from data.db import transaction
from data.models import AuditEntry, Binding, Invitation, Member, OutboxItem
from tests.queries import issue_code, member_id

__all__ = ["issue_code", "member_id"]


def use_proof(conversation: Conversation, proof: Literal["code", "phone4", "name"]) -> None:
    """The conversation as if started with QIYI_BIND_PROOF=proof."""
    conversation.settings = conversation.settings.model_copy(update={"bind_proof": proof})


async def say_as(
    conversation: Conversation, sender: Sender, text: str, window: ContactWindow | None = None
) -> str:
    inbound = Inbound(
        sender, uuid.uuid4().hex, InboundKind.TEXT, conversation.clock.now(), text, window
    )
    return await conversation.respond(inbound)


async def bind_directly(conversation: Conversation, sender: Sender, roster_id: str) -> None:
    """A binding made before the test (no notice, no audit row): the member's own account."""
    async with transaction(conversation.sessions) as session:
        member = await members.member_by_roster_id(session, roster_id)
        assert member is not None
        await members.bind(session, sender, member, conversation.clock.now())


async def bound_to(conversation: Conversation, sender: Sender) -> str | None:
    """The member_id the chat account is bound to, if any."""
    async with conversation.sessions() as session:
        member = await members.member_for(session, sender)
        return member.roster_id if member else None


async def member(conversation: Conversation, roster_id: str) -> Member:
    async with conversation.sessions() as session:
        found = await members.member_by_roster_id(session, roster_id)
        assert found is not None
        return found


async def channels_of(conversation: Conversation, roster_id: str) -> list[str]:
    mid = await member_id(conversation, roster_id)
    async with conversation.sessions() as session:
        statement = select(Binding.channel).where(Binding.member_id == mid)
        return sorted(await session.exec(statement))


async def invitation_of(conversation: Conversation, roster_id: str) -> Invitation | None:
    mid = await member_id(conversation, roster_id)
    async with conversation.sessions() as session:
        statement = select(Invitation).where(Invitation.member_id == mid)
        return (await session.exec(statement)).first()


async def audit_rows(conversation: Conversation, action: str) -> list[AuditEntry]:
    async with conversation.sessions() as session:
        statement = (
            select(AuditEntry).where(AuditEntry.action == action).order_by(col(AuditEntry.id))
        )
        return list(await session.exec(statement))


async def security_items(conversation: Conversation, roster_id: str) -> list[OutboxItem]:
    mid = await member_id(conversation, roster_id)
    async with conversation.sessions() as session:
        statement = (
            select(OutboxItem)
            .where(OutboxItem.member_id == mid, OutboxItem.kind == "security")
            .order_by(col(OutboxItem.id))
        )
        return list(await session.exec(statement))
