"""The console channel: `qiyi chat --as MEMBER_ID` talks to the same conversation as WeChat."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from bot.clock import Clock
from bot.conversation import Conversation
from bot.messages import Inbound, InboundKind, Sender, bounded_text
from data import members
from data.db import transaction

CHANNEL = "console"


class UnknownMember(LookupError):
    pass


async def open_as(conversation: Conversation, roster_id: str) -> Sender:
    """The console address of a roster member, bound on first use (the operator vouches)."""
    sender = Sender(CHANNEL, roster_id)
    async with transaction(conversation.sessions) as session:
        member = await members.member_by_roster_id(session, roster_id)
        if member is None or member.left_on is not None:  # who left cannot bind
            raise UnknownMember(roster_id)
        if await members.member_for(session, sender) is None:
            await members.bind(session, sender, member, conversation.clock.now())
    return sender


async def say(conversation: Conversation, sender: Sender, text: str, clock: Clock) -> str:
    inbound = Inbound(sender, uuid.uuid4().hex, InboundKind.TEXT, clock.now(), bounded_text(text))
    return await conversation.respond(inbound)


async def repl(
    conversation: Conversation,
    sender: Sender,
    read: Callable[[], str | None],
    write: Callable[[str], None],
) -> None:
    """Answer lines until `read` returns None (end of input) or `退出`/`exit`."""
    while (line := read()) is not None:
        line = line.strip()
        if line in ("退出", "exit", "quit"):
            break
        if line:
            write(await say(conversation, sender, line, conversation.clock))
