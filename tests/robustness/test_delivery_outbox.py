"""The outbox's own promises, each pinned by a test (mutation testing found them untested):
whose items wait for a member, how many members one claim takes, which come first, and
enqueueing more rows than one insert chunk."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func
from sqlmodel import select

from bot.clock import today
from bot.conversation import Conversation
from data import outbox
from data.db import transaction
from data.models import DeliveryAttempt, OutboxItem, PushKind
from data.outbox import INSERT_CHUNK, Push
from tests.conftest import Chat
from tests.queries import member_id

LEASE = dt.timedelta(minutes=2)


async def enqueue(
    conversation: Conversation, roster_id: str, ref: str, due: dt.datetime | None = None
) -> None:
    clock = conversation.clock
    mid = await member_id(conversation, roster_id)
    push = Push(mid, PushKind.NEWS, ref, today(clock), ref, ref, due or clock.now())
    async with transaction(conversation.sessions) as session:
        assert await outbox.enqueue(session, [push], clock.now()) == 1


async def claimed_members(conversation: Conversation, members: int) -> list[int]:
    """The member ids one claim takes, in the order of its items."""
    async with transaction(conversation.sessions) as session:
        items = await outbox.claim_due(session, conversation.clock.now(), members, LEASE)
    return list(dict.fromkeys(item.member_id for item in items))


async def test_waiting_for_gives_only_the_members_own_pending_items(
    conversation: Conversation,
) -> None:
    await enqueue(conversation, "1001", "a")
    await enqueue(conversation, "1001", "b")
    await enqueue(conversation, "1002", "c")

    ids = [await member_id(conversation, r) for r in ("1001", "1002", "2001")]
    async with transaction(conversation.sessions) as session:
        mine, theirs, nobody = [await outbox.waiting_for(session, mid) for mid in ids]

    assert sorted(item.brief for item in mine) == ["a", "b"]
    assert [item.brief for item in theirs] == ["c"]
    assert nobody == []


async def test_a_claim_takes_at_most_the_members_asked(conversation: Conversation) -> None:
    for roster_id in ("1001", "1002", "1003"):
        await enqueue(conversation, roster_id, "one")

    first = await claimed_members(conversation, 2)
    second = await claimed_members(conversation, 2)

    assert len(first) == 2 and len(second) == 1
    assert set(first).isdisjoint(second)


async def test_a_claim_takes_whole_bundles(conversation: Conversation) -> None:
    now = conversation.clock.now()
    for roster_id in ("1001", "1002", "1003"):
        await enqueue(conversation, roster_id, "one", now - dt.timedelta(minutes=1))
        await enqueue(conversation, roster_id, "two")

    async with transaction(conversation.sessions) as session:
        items = await outbox.claim_due(session, now, 2, LEASE)

    per_member: dict[int, list[str]] = {}
    for item in items:
        per_member.setdefault(item.member_id, []).append(item.brief)
    assert 1 <= len(per_member) <= 2
    assert all(sorted(briefs) == ["one", "two"] for briefs in per_member.values())
    assert await claimed_members(conversation, 10) != []  # the others are still due


async def test_the_oldest_due_member_is_claimed_first(conversation: Conversation) -> None:
    now = conversation.clock.now()
    await enqueue(conversation, "1001", "new", now - dt.timedelta(minutes=1))
    await enqueue(conversation, "1002", "old", now - dt.timedelta(hours=2))
    await enqueue(conversation, "1003", "middle", now - dt.timedelta(minutes=30))

    order = [await claimed_members(conversation, 1) for _ in range(3)]

    expected = [[await member_id(conversation, r)] for r in ("1002", "1003", "1001")]
    assert order == expected


async def test_enqueue_inserts_more_than_one_chunk_and_then_nothing_new(
    conversation: Conversation,
) -> None:
    clock = conversation.clock
    mid = await member_id(conversation, "1001")
    total = INSERT_CHUNK * 2 + 500
    pushes = [
        Push(mid, PushKind.NEWS, f"article:{n}", today(clock), "t", "b", clock.now())
        for n in range(total)
    ]

    async with transaction(conversation.sessions) as session:
        assert await outbox.enqueue(session, pushes, clock.now()) == total
    async with transaction(conversation.sessions) as session:
        assert await outbox.enqueue(session, pushes, clock.now()) == 0
    async with conversation.sessions() as session:
        count = (await session.exec(select(func.count()).select_from(OutboxItem))).one()
    assert count == total


async def test_enqueue_counts_exactly_at_a_chunk_boundary_and_for_nothing(
    conversation: Conversation,
) -> None:
    clock = conversation.clock
    mid = await member_id(conversation, "1001")
    pushes = [
        Push(mid, PushKind.NEWS, f"article:{n}", today(clock), "t", "b", clock.now())
        for n in range(INSERT_CHUNK * 2)
    ]

    async with transaction(conversation.sessions) as session:
        assert await outbox.enqueue(session, pushes, clock.now()) == INSERT_CHUNK * 2
        assert await outbox.enqueue(session, [], clock.now()) == 0


async def test_a_push_shown_in_a_reply_is_done_with_its_attempt(chat: Chat) -> None:
    conversation = chat.conversation
    await enqueue(conversation, "1001", "今晚的微资讯")
    now = conversation.clock.now()

    assert "今晚的微资讯" in await chat.say("1001", "今日")

    async with conversation.sessions() as session:
        (item,) = await session.exec(select(OutboxItem))
        attempts = list(await session.exec(select(DeliveryAttempt)))
    assert (item.state, item.done_at) == ("mailbox", now)
    assert [(a.outbox_id, a.method, a.ok, a.at, a.detail) for a in attempts] == [
        (item.id, "reply", True, now, "")
    ]
