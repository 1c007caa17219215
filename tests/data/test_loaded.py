"""A member read with Core for the first query of a message (`data.db.loaded`) is the
session's ORM object, as one loaded through the ORM would be."""

from __future__ import annotations

from data import members
from data.db import transaction
from data.models import Member
from tests.conftest import Chat


async def test_it_holds_what_the_orm_would_load(chat: Chat) -> None:
    sessions = chat.conversation.sessions
    async with transaction(sessions) as session:
        found = await members.sender_state(session, chat.sender("1002"))
        assert found is not None
        assert found.member in session and not session.dirty  # loaded, nothing changed
        read = found.member.model_dump()
    async with transaction(sessions) as session:
        by_orm = await session.get(Member, found.member.id)
        assert by_orm is not None
        assert read == by_orm.model_dump()


async def test_its_changes_are_written_as_an_update(chat: Chat) -> None:
    sessions = chat.conversation.sessions
    async with transaction(sessions) as session:
        found = await members.sender_state(session, chat.sender("1002"))
        assert found is not None
        found.member.name = "李四改"
        assert found.member in session.dirty
    async with transaction(sessions) as session:
        again = await members.sender_state(session, chat.sender("1002"))
        assert again is not None
        assert again.member.name == "李四改"
        assert await session.get(Member, again.member.id) is again.member  # one row, one object


async def test_the_sessions_own_object_is_returned_when_it_has_one(chat: Chat) -> None:
    async with transaction(chat.conversation.sessions) as session:
        known = await members.member_by_roster_id(session, "1002")
        assert known is not None
        known.name = "未提交"  # a change not flushed yet is not overwritten by the read

        found = await members.sender_state(session, chat.sender("1002"))

        assert found is not None and found.member is known
        assert found.member.name == "未提交"
