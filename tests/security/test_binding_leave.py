"""A member who left: history kept, role lowered, bindings ended, code withdrawn, no pushes;
and a role given or taken. The operations of `bot.membership`, on both databases."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlmodel import select

from bot import membership, pushes
from bot.conversation import Conversation
from data import audience, audit
from data.db import transaction
from data.members import RosterRow
from data.models import Member, OutboxItem, PushKind, Role, StudyEntry
from tests.conftest import ROSTER, Chat
from tests.queries import count
from tests.security.binding_helpers import (
    audit_rows,
    channels_of,
    invitation_of,
    issue_code,
    member,
    member_id,
)

CLI = audit.Actor(audit.Door.CLI, "cli:office@host", "host")
LEFT_ON = dt.date(2026, 11, 20)


async def leave(conversation: Conversation, roster_id: str) -> bool:
    async with transaction(conversation.sessions) as session:
        found = (await session.exec(select(Member).where(Member.roster_id == roster_id))).one()
        return await membership.leave(session, CLI, found, LEFT_ON, conversation.clock.now())


async def test_leaving_ends_bindings_lowers_the_role_and_withdraws_the_code(chat: Chat) -> None:
    conversation = chat.conversation
    await chat.say("1003", "学习 30")
    await issue_code(conversation, "1003")

    assert await leave(conversation, "1003") is True

    gone = await member(conversation, "1003")
    assert (gone.left_on, gone.role) == (LEFT_ON, "member")
    assert await channels_of(conversation, "1003") == []
    invitation = await invitation_of(conversation, "1003")
    assert invitation is not None and invitation.code_hash == "void"
    assert await count(conversation, StudyEntry) == 1  # history kept
    [row] = await audit_rows(conversation, "member.leave")
    assert (row.door, row.actor, row.object_id) == ("cli", "cli:office@host", "1003")
    assert json.loads(row.before) == {
        "left_on": None,
        "role": "secretary",
        "channels": ["test"],
        "invitation": "issued",
    }
    assert json.loads(row.after) == {
        "left_on": "2026-11-20",
        "role": "member",
        "channels": [],
        "invitation": "withdrawn",
    }
    assert await leave(conversation, "1003") is False  # once
    assert len(await audit_rows(conversation, "member.leave")) == 1


async def test_undoing_a_leave(conversation: Conversation) -> None:
    await leave(conversation, "1001")
    async with transaction(conversation.sessions) as session:
        found = (await session.exec(select(Member).where(Member.roster_id == "1001"))).one()
        assert await membership.undo_leave(session, CLI, found, conversation.clock.now())
    assert (await member(conversation, "1001")).left_on is None
    [row] = await audit_rows(conversation, "member.leave_undo")
    assert (json.loads(row.before), json.loads(row.after)) == (
        {"left_on": "2026-11-20"},
        {"left_on": None},
    )


async def test_members_who_left_get_no_pushes(chat: Chat) -> None:
    conversation = chat.conversation
    await leave(conversation, "1001")
    # And one marked left whose binding somehow survived (a restore, a hand edit): still none.
    async with transaction(conversation.sessions) as session:
        found = (await session.exec(select(Member).where(Member.roster_id == "9001"))).one()
        found.left_on = LEFT_ON
        session.add(found)
    conversation.clock.advance(hours=12)  # 21:00, reminders are due

    async with transaction(conversation.sessions) as session:
        await pushes.enqueue_article(
            session, conversation.settings, conversation.clock, PushKind.LESSON
        )
        await pushes.enqueue_reminders(session, conversation.settings, conversation.clock)
        staff = await audience.staff(session)
        admins = await audience.admins(session)

    gone = {await member_id(conversation, "1001"), await member_id(conversation, "9001")}
    async with conversation.sessions() as session:
        pushed = {item.member_id for item in await session.exec(select(OutboxItem))}
    assert pushed and not pushed & gone
    assert len(pushed) == len(ROSTER) - 2
    assert not {mid for mid, _, _ in staff} & gone
    assert admins == []


async def test_a_role_is_set_and_audited(conversation: Conversation) -> None:
    async with transaction(conversation.sessions) as session:
        found = (await session.exec(select(Member).where(Member.roster_id == "1001"))).one()
        now = conversation.clock.now()
        assert await membership.set_role(session, CLI, found, Role.SECRETARY, now)
        assert not await membership.set_role(session, CLI, found, Role.SECRETARY, now)
    assert (await member(conversation, "1001")).role == "secretary"
    [row] = await audit_rows(conversation, "member.role")
    assert (json.loads(row.before), json.loads(row.after)) == (
        {"role": "member"},
        {"role": "secretary"},
    )


async def test_a_member_who_left_gets_no_role(conversation: Conversation) -> None:
    await leave(conversation, "1001")
    async with transaction(conversation.sessions) as session:
        found = (await session.exec(select(Member).where(Member.roster_id == "1001"))).one()
        with pytest.raises(membership.MemberLeft):
            await membership.set_role(session, CLI, found, Role.ADMIN, conversation.clock.now())
    assert (await member(conversation, "1001")).role == "member"


async def test_the_import_lists_the_absent_and_marks_them_left_when_asked(
    chat: Chat,
) -> None:
    conversation = chat.conversation
    kept = [row for row in ROSTER if row.member_id not in ("1002", "2002")]
    async with transaction(conversation.sessions) as session:
        result = await membership.import_roster(session, CLI, kept, conversation.clock.now())
    assert [m.roster_id for m in result.absent] == ["1002", "2002"]
    assert (await member(conversation, "2002")).role == "secretary"  # only listed

    async with transaction(conversation.sessions) as session:
        await membership.import_roster(session, CLI, kept, conversation.clock.now(), LEFT_ON)
    for roster_id in ("1002", "2002"):
        gone = await member(conversation, roster_id)
        assert (gone.left_on, gone.role) == (LEFT_ON, "member")
        assert await channels_of(conversation, roster_id) == []
    assert len(await audit_rows(conversation, "member.leave")) == 2
    # A third import: the two are not "absent" any more (they have left).
    async with transaction(conversation.sessions) as session:
        again = await membership.import_roster(session, CLI, kept, conversation.clock.now())
    assert again.absent == []


async def test_import_changes_are_audited_per_member(conversation: Conversation) -> None:
    changed = [
        RosterRow("1001", "张三丰", "第二党支部", Role.SECRETARY, "5678"),
        RosterRow("3001", "孙丽", "第三党支部", Role.MEMBER),
        *[row for row in ROSTER if row.member_id != "1001"],
    ]
    async with transaction(conversation.sessions) as session:
        await membership.import_roster(session, CLI, changed, conversation.clock.now())

    [update] = await audit_rows(conversation, "member.import")
    assert update.object_id == "1001" and update.door == "cli"
    assert json.loads(update.before) == {"name": "张三", "branch": "第一党支部", "role": "member"}
    assert json.loads(update.after) == {
        "name": "张三丰",
        "branch": "第二党支部",
        "role": "secretary",
    }
    [added] = await audit_rows(conversation, "member.add")
    assert added.object_id == "3001" and json.loads(added.after)["branch"] == "第三党支部"
    assert (await member(conversation, "1001")).phone_tail == "5678"
    assert "5678" not in update.after  # the phone is not written into the log
