"""The outbox's own promises, each pinned by a test (mutation testing found them untested):
whose items wait for a member and on which of their accounts, in what order, how many
members one claim takes, which come first, enqueueing more rows than one insert chunk, and
what an attempt records (docs/mutation.md)."""

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
    conversation: Conversation,
    roster_id: str,
    ref: str,
    due: dt.datetime | None = None,
    kind: PushKind = PushKind.NEWS,
) -> None:
    clock = conversation.clock
    mid = await member_id(conversation, roster_id)
    push = Push(mid, kind, ref, today(clock), ref, ref, due or clock.now())
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


async def waiting_briefs(
    conversation: Conversation, roster_id: str, channel: str | None
) -> list[str]:
    mid = await member_id(conversation, roster_id)
    async with transaction(conversation.sessions) as session:
        return [item.brief for item in await outbox.waiting_for(session, mid, channel)]


async def test_an_item_addressed_to_one_account_waits_for_that_account_only(
    conversation: Conversation,
) -> None:
    await enqueue(conversation, "1001", "for-any")
    await enqueue(conversation, "1001", "bind:7>wechat", kind=PushKind.SECURITY)
    await enqueue(conversation, "1001", "bind:8>qq", kind=PushKind.SECURITY)

    on_qq = await waiting_briefs(conversation, "1001", "qq")
    on_wechat = await waiting_briefs(conversation, "1001", "wechat")
    on_qqbot = await waiting_briefs(conversation, "1001", "qqbot")
    anywhere = await waiting_briefs(conversation, "1001", None)

    assert sorted(on_qq) == ["bind:8>qq", "for-any"]
    assert sorted(on_wechat) == ["bind:7>wechat", "for-any"]
    assert on_qqbot == ["for-any"]  # "qq" is not a prefix match for another channel
    assert sorted(anywhere) == ["bind:7>wechat", "bind:8>qq", "for-any"]


async def test_waiting_items_come_by_priority_then_as_queued(conversation: Conversation) -> None:
    # Queued news, a lesson, news, a reminder: a reply shows the reminder first, then the
    # lesson, then the news in the order they were queued.
    await enqueue(conversation, "1001", "news-1", kind=PushKind.NEWS)
    await enqueue(conversation, "1001", "lesson", kind=PushKind.LESSON)
    await enqueue(conversation, "1001", "news-2", kind=PushKind.NEWS)
    await enqueue(conversation, "1001", "reminder", kind=PushKind.REMINDER)

    assert await waiting_briefs(conversation, "1001", None) == [
        "reminder",
        "lesson",
        "news-1",
        "news-2",
    ]


def addressed(key: str) -> str | None:
    return outbox.addressed_to(OutboxItem(key=key))


def test_the_account_an_item_is_addressed_to_is_read_from_its_key() -> None:
    assert addressed("12:security:bind:7>wechat:2026-11-25") == "wechat"
    assert addressed("12:security:bind:8>qq:2026-11-25") == "qq"
    assert addressed("12:news:article:3:2026-11-25") is None
    assert addressed("12:review:entry:5:2026-11-25") is None


async def test_an_attempt_keeps_the_platforms_code_and_a_bounded_detail(
    conversation: Conversation,
) -> None:
    await enqueue(conversation, "1001", "news")
    now = conversation.clock.now()
    async with transaction(conversation.sessions) as session:
        (item,) = await session.exec(select(OutboxItem))
        outbox.record(session, item, "custom", False, now, 45047, "超" * 400)
        outbox.record(session, item, "template", True, now)

    async with conversation.sessions() as session:
        attempts = list(await session.exec(select(DeliveryAttempt).order_by(DeliveryAttempt.id)))
    assert [(a.outbox_id, a.method, a.ok, a.at, a.errcode) for a in attempts] == [
        (item.id, "custom", False, now, 45047),
        (item.id, "template", True, now, None),
    ]
    assert [a.detail for a in attempts] == ["超" * 300, ""]


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


async def test_a_deferred_item_is_not_claimed_before_its_time(conversation: Conversation) -> None:
    now = conversation.clock.now()
    await enqueue(conversation, "1001", "due-now", now)
    await enqueue(conversation, "1001", "in-an-hour", now + dt.timedelta(hours=1))
    await enqueue(conversation, "1002", "in-a-second", now + dt.timedelta(seconds=1))

    async with transaction(conversation.sessions) as session:
        # Leased past the next claim: that one takes only what has come due meanwhile.
        items = await outbox.claim_due(session, now, 10, dt.timedelta(hours=2))
    # The member's due item only: neither their later one nor the other member's.
    assert [item.brief for item in items] == ["due-now"]

    later = now + dt.timedelta(hours=1)
    async with transaction(conversation.sessions) as session:
        items = await outbox.claim_due(session, later, 10, LEASE)
    assert sorted(item.brief for item in items) == ["in-a-second", "in-an-hour"]


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
