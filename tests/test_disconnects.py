"""A PostgreSQL connection that dies under the bot (a database restart, a firewall's idle
timeout): an idle pooled connection is pinged before use and replaced, and a message whose
connection dies in use is answered again on a new one, counted once. PostgreSQL only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import build_conversation
from bot.clock import FixedClock
from content.texts import render
from data import db, migrate
from data.db import create_engine, run, session_factory, transaction
from data.models import StudyEntry
from tests.conftest import MORNING, Chat, _reset_postgres, make_settings, seed


@pytest.fixture
async def engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    await _reset_postgres(pg_url)
    engine = create_engine(pg_url)
    await migrate.upgrade(engine)
    yield engine
    await engine.dispose()


async def backend_of_a_pooled_connection(engine: AsyncEngine) -> int:
    """Use a connection and give it back to the pool: its server process."""
    async with transaction(session_factory(engine)) as session:
        return int((await run(session, text("SELECT pg_backend_pid()"))).scalar_one())


async def restart_backends(url: str) -> int:
    """What a database restart does to the bot's pooled connections: every other connection
    to the database is terminated (waiting until it is gone). How many were."""
    killer = create_engine(url)
    try:
        async with killer.connect() as connection:
            killed = await connection.execute(
                text(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) "
                    "FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            return int(killed.scalar_one())
    finally:
        await killer.dispose()


async def test_an_idle_connection_is_pinged_and_replaced(
    engine: AsyncEngine, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = await backend_of_a_pooled_connection(engine)
    assert await restart_backends(pg_url) >= 1
    monkeypatch.setattr(db, "IDLE_BEFORE_PING_S", 0.0)  # every pooled connection counts as idle

    after = await backend_of_a_pooled_connection(engine)  # no error: the dead one was replaced

    assert after != before


async def test_a_message_whose_connection_died_is_answered_once_on_a_new_one(
    engine: AsyncEngine, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(pg_url)
    conversation = build_conversation(settings, FixedClock(MORNING), engine)
    await seed(conversation)
    chat = Chat(conversation)
    await chat.bind("1001")
    assert await restart_backends(pg_url) >= 1  # the pooled connection was used a moment ago

    reply = await chat.say("1001", "学习 30")

    assert "已记录" in reply and reply != render("error")
    assert "database connection lost" in caplog.text
    async with transaction(conversation.sessions) as session:
        entries = (await run(session, select(func.count()).select_from(StudyEntry))).scalar()
    assert entries == 1
