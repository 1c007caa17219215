"""The message path's statements run with a plan (`data.planned`): the same rows, the same
types and the same errors as SQLAlchemy's own execution, and SQLAlchemy's own execution
wherever a plan could differ from it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, event, insert, select
from sqlalchemy.exc import IntegrityError, MultipleResultsFound, NoResultFound, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from data import members, planned, study
from data.db import run, transaction
from data.models import Member, ProcessedMessage
from tests.conftest import MORNING, Chat

_IDS = planned.planned(
    select(Member.id).where(col(Member.id).in_(bindparam("ids", expanding=True)))
)
_KEYS = planned.planned(insert(ProcessedMessage))
_DEFAULTS = MetaData()
_NOTED = Table(
    "planned_noted",
    _DEFAULTS,
    Column("id", Integer, primary_key=True),
    Column("text", String(20)),
    Column("origin", String(20), default=lambda: "python"),  # computed by SQLAlchemy
)
_NOTE = planned.planned(insert(_NOTED))
# A shape of its own: SQLAlchemy's compiled cache would otherwise serve the form compiled
# for another statement of this shape, which knows nothing of these `.params()`.
_BY_PARAMS = planned.planned(
    select(Member.id, Member.name)
    .where(col(Member.roster_id) == bindparam("given_roster_id"))
    .params(given_roster_id="1002")
)
_BY_CALLABLE = planned.planned(
    select(Member.id).where(
        col(Member.roster_id) == bindparam("roster_id", callable_=lambda: "1002")
    )
)
_UNMARKED = select(Member.id).where(col(Member.roster_id) == bindparam("roster_id"))


async def _by_core(session: AsyncSession, statement: Any, params: Any) -> list[tuple[Any, ...]]:
    def read(sync: Any) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in sync.connection().execute(statement, params)]

    return await session.run_sync(read)


async def test_rows_and_their_types_are_what_sqlalchemy_reads(chat: Chat) -> None:
    sender = chat.sender("1002")
    params = {"channel": sender.channel, "external_id": sender.external_id}
    async with transaction(chat.conversation.sessions) as session:
        await members.open_window(
            session,
            (await members.sender_state(session, sender)).window,  # type: ignore[union-attr]
            MORNING + dt.timedelta(hours=48),
            5,
        )
        result = await run(session, members._SENDER_STATE, params)
        assert isinstance(result, planned.Fetched)  # the plan ran, not SQLAlchemy's execution
        row = result.one()
        assert [tuple(row)] == await _by_core(session, members._SENDER_STATE, params)
        # Processed as SQLAlchemy would: an aware datetime, a date, a bool; and by name.
        assert row.window_until == MORNING + dt.timedelta(hours=48)
        assert row.window_until.tzinfo is not None
        assert isinstance(row.joined_at, dt.datetime) and row.joined_at.tzinfo is not None
        assert isinstance(row.reminder_enabled, bool)
        assert row.window_budget == 5


async def test_parameters_are_processed_as_sqlalchemy_would(chat: Chat) -> None:
    day = MORNING.date()
    async with transaction(chat.conversation.sessions) as session:
        member = await members.member_by_roster_id(session, "1002")
        assert member is not None and member.id is not None
        entry = await study.add_entry(session, member.id, day, 45, "读书", MORNING)
        assert entry > 0
        # The date went in as SQLAlchemy writes it: a read through SQLAlchemy finds it.
        params = {"member_id": member.id, "day": day}
        assert await _by_core(session, study._MINUTES_ON, params) == [(45,)]
        assert (await run(session, study._MINUTES_ON, params)).scalar_one() == 45


async def test_a_value_left_out_is_refused_as_sqlalchemy_refuses_it(chat: Chat) -> None:
    async with transaction(chat.conversation.sessions) as session:
        for statement in (study._MINUTES_ON, _UNMARKED):
            with pytest.raises(SQLAlchemyError, match="A value is required for bind parameter"):
                await run(session, statement, {"member_id": 1})


async def test_a_statements_columns_follow_the_parameters_given(engine: AsyncEngine) -> None:
    # An INSERT of the whole table compiles with the columns it is given: a plan per set.
    from data.db import session_factory

    sessions = session_factory(engine)
    async with transaction(sessions) as session:
        short = {"channel": "t", "key": "a", "reply": "x", "created_at": MORNING}
        await run(session, _KEYS, short)
        await run(session, _KEYS, short | {"key": "b", "id": 900})
        rows = await _by_core(
            session,
            select(ProcessedMessage.id, ProcessedMessage.key).order_by(col(ProcessedMessage.key)),
            None,
        )
    assert rows[1] == (900, "b") and rows[0][1] == "a" and rows[0][0] != 900


async def test_errors_are_sqlalchemys(chat: Chat) -> None:
    with pytest.raises(IntegrityError):  # no member 999999: the foreign key refuses it
        async with transaction(chat.conversation.sessions) as session:
            await study.add_entry(session, 999_999, MORNING.date(), 30, "", MORNING)
    # The refused statement left the transaction machinery usable.
    assert "30/120" in await chat.say("1002", "学习 30")


async def test_what_a_plan_cannot_do_runs_through_sqlalchemy(chat: Chat) -> None:
    async with transaction(chat.conversation.sessions) as session:
        ids = [m.id for m in [await members.member_by_roster_id(session, "1002")] if m]
        expanded = await run(session, _IDS, {"ids": [*ids, 123_456]})
        assert not isinstance(expanded, planned.Fetched)  # an IN list: SQLAlchemy expands it
        assert expanded.scalars().all() == ids
        for valued in (_BY_PARAMS, _BY_CALLABLE):  # values SQLAlchemy keeps aside
            assert (await run(session, valued)).scalars().all() == ids
        unmarked = await run(session, _UNMARKED, {"roster_id": "1002"})
        assert not isinstance(unmarked, planned.Fetched)
        assert unmarked.scalars().all() == ids


async def test_a_python_side_default_is_computed_by_sqlalchemy(chat: Chat) -> None:
    async with transaction(chat.conversation.sessions) as session:
        await session.run_sync(lambda sync: _DEFAULTS.create_all(sync.connection()))
        await run(session, _NOTE, {"text": "a"})
        assert await _by_core(session, select(_NOTED.c.text, _NOTED.c.origin), None) == [
            ("a", "python")
        ]


async def test_a_listener_on_the_connection_sees_its_statements(chat: Chat) -> None:
    seen: list[str] = []
    sender = chat.sender("1002")
    params = {"channel": sender.channel, "external_id": sender.external_id}
    async with transaction(chat.conversation.sessions) as session:
        connection = await session.run_sync(lambda sync: sync.connection())
        event.listen(connection, "before_cursor_execute", lambda *args: seen.append(args[2]))
        assert (await run(session, members._SENDER_STATE, params)).one() is not None
    assert any("FROM member" in statement for statement in seen)


async def test_a_listener_sees_every_statement(chat: Chat, engine: AsyncEngine) -> None:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    sender = chat.sender("1002")
    params = {"channel": sender.channel, "external_id": sender.external_id}
    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        async with transaction(chat.conversation.sessions) as session:
            result = await run(session, members._SENDER_STATE, params)
            assert not isinstance(result, planned.Fetched)
            assert result.one().window_budget is not None
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert any("FROM member" in statement for statement in seen)


def test_fetched_answers_as_a_result_does() -> None:
    empty, one, two = (planned.Fetched(rows, -1) for rows in ([], [(1, "a")], [(1, "a"), (2, "b")]))
    assert empty.first() is None and empty.scalar() is None and empty.all() == []
    assert empty.one_or_none() is None and empty.scalar_one_or_none() is None
    with pytest.raises(NoResultFound):
        empty.one()
    with pytest.raises(NoResultFound):
        empty.scalar_one()
    assert one.one() == (1, "a") and one.scalar_one() == 1 and one.scalar_one_or_none() == 1
    assert one.first() == (1, "a") and one.scalar() == 1
    with pytest.raises(MultipleResultsFound):
        two.one()
    with pytest.raises(MultipleResultsFound):
        two.one_or_none()
    assert two.first() == (1, "a") and two.scalar() == 1
    assert two.scalars().all() == [1, 2] and list(two) == [(1, "a"), (2, "b")]
    assert two.all() is not two.rows  # a copy, as a Result's list is the caller's
