"""The processed-message dedupe holds across processes: two engines on one database."""

from __future__ import annotations

import asyncio

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.app import build_conversation
from bot.clock import FixedClock
from bot.messages import Inbound, InboundKind
from data.db import create_engine
from data.models import ProcessedMessage, StudyEntry
from tests.conftest import MORNING, Chat, make_settings, seed


async def _count(engine: AsyncEngine, model: type) -> int:
    async with engine.connect() as connection:
        result = await connection.execute(select(func.count()).select_from(model))
        return int(result.scalar_one())


async def test_concurrent_retry_on_two_engines_is_answered_once(
    database_url: str, engine: AsyncEngine
) -> None:
    other_engine = create_engine(database_url)
    try:
        settings = make_settings(database_url)
        clock = FixedClock(MORNING)
        # Two "processes": each has its own engine, pool and session factory.
        first = build_conversation(settings, clock, engine)
        second = build_conversation(settings, clock, other_engine)
        await seed(first)
        chat = Chat(first)
        await chat.bind("1001")
        sender = chat.sender("1001")

        rounds = 3
        for number in range(1, rounds + 1):
            # The platform's retry: the same message id delivered to both processes at once.
            inbound = Inbound(
                sender, f"retried-msg-{number}", InboundKind.TEXT, clock.now(), "学习 30"
            )
            replies = await asyncio.gather(first.respond(inbound), second.respond(inbound))

            assert replies[0] == replies[1]
            assert f"{30 * number}/120" in replies[0]
            assert await _count(engine, StudyEntry) == number
            assert await _count(other_engine, ProcessedMessage) == number
    finally:
        await other_engine.dispose()
