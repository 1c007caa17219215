"""The processed-message dedupe holds across processes: two engines on one database."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.app import build_conversation
from bot.clock import FixedClock
from bot.messages import Inbound, InboundKind
from data import processed
from data.db import create_engine, transaction
from data.models import ProcessedMessage, StudyEntry
from scheduler.jobs import PushJobs
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


async def test_the_nightly_job_forgets_old_messages_in_batches_and_keeps_the_last_week(
    database_url: str, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(processed, "PRUNE_BATCH", 2)  # three old messages: two batches
    clock = FixedClock(MORNING)
    settings = make_settings(database_url)
    conversation = build_conversation(settings, clock, engine)
    ages = {"old-1": 30, "old-2": 9, "old-3": 7.01, "recent-1": 6.99, "recent-2": 0}
    for key, days in ages.items():
        async with transaction(conversation.sessions) as session:
            when = MORNING - dt.timedelta(days=days)
            await processed.record(session, "wechat", key, f"reply to {key}", when)

    forgotten = await PushJobs(settings, clock, conversation.sessions).forget_processed()

    assert forgotten == 3
    async with engine.connect() as connection:
        keys = (await connection.execute(select(ProcessedMessage.key))).scalars().all()
    assert sorted(keys) == ["recent-1", "recent-2"]
    # A retry of a message still kept is still recognised, with its first reply.
    with pytest.raises(processed.AlreadyProcessed):
        async with transaction(conversation.sessions) as session:
            await processed.record(session, "wechat", "recent-1", "again", MORNING)
    async with transaction(conversation.sessions) as session:
        assert await processed.stored_reply(session, "wechat", "recent-1") == "reply to recent-1"
