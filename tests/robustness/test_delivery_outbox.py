"""The outbox's own promises, each pinned by a test (mutation testing found them untested):
whose items wait for a member and on which of their accounts, in what order, how many
members one claim takes, which come first, which leases are taken over, enqueueing more rows
than one insert chunk, what an attempt records, retrying failed items, and withdrawing and
restoring a reminder (docs/mutation.md)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import AsyncIterator, Callable

from sqlalchemy import func
from sqlmodel import select

from bot.clock import today
from bot.conversation import Conversation
from data import leases, outbox
from data.db import transaction
from data.limits import shortened
from data.models import DeliveryAttempt, OutboxItem, OutboxState, PushKind
from data.outbox import BRIEF_LIMIT, INSERT_CHUNK, Push
from tests.conftest import Chat
from tests.queries import member_id

LEASE = dt.timedelta(minutes=2)
ACTIVITY_REMINDER = PushKind.ACTIVITY_REMINDER


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


async def item_of(conversation: Conversation, brief: str) -> OutboxItem:
    async with conversation.sessions() as session:
        return (await session.exec(select(OutboxItem).where(OutboxItem.brief == brief))).one()


async def hold(conversation: Conversation, brief: str, until: dt.datetime) -> None:
    """The item is being sent by a dispatcher whose lease ends at `until`."""
    async with transaction(conversation.sessions) as session:
        row = (await session.exec(select(OutboxItem).where(OutboxItem.brief == brief))).one()
        leases.take(session, [row], until - LEASE, LEASE)


async def settle_due(
    conversation: Conversation, change: Callable[[OutboxItem, dt.datetime], leases.Change]
) -> None:
    """Claim every due item and settle each with `change`, as a dispatcher would."""
    now = conversation.clock.now()
    async with transaction(conversation.sessions) as session:
        items = await outbox.claim_due(session, now, 10, LEASE)
        lease = leases.Lease.over(OutboxItem, items, now + LEASE)
        await leases.settle(session, lease, [change(item, now) for item in items])


async def test_a_queued_item_is_pending_untried_with_its_picture_and_a_bounded_brief(
    conversation: Conversation,
) -> None:
    clock = conversation.clock
    mid = await member_id(conversation, "1001")
    brief = "摘" * (BRIEF_LIMIT + 50)
    push = Push(mid, PushKind.NEWS, "article:3", today(clock), "全文", brief, clock.now(), "p.png")
    async with transaction(conversation.sessions) as session:
        assert await outbox.enqueue(session, [push], clock.now()) == 1

    async with conversation.sessions() as session:
        (row,) = await session.exec(select(OutboxItem))
    assert (row.key, row.kind, row.text, row.image) == (push.key, "news", "全文", "p.png")
    assert (row.state, row.attempts, row.last_error, row.created_at) == (
        "pending",
        0,
        "",
        clock.now(),
    )
    assert row.brief == shortened(brief, BRIEF_LIMIT) and len(row.brief) == BRIEF_LIMIT


async def test_enqueue_writes_each_full_chunk_before_reading_on(
    conversation: Conversation,
) -> None:
    # Pushes stream in (a query over every member): a full chunk is written before the next
    # push is read, so no more than one chunk is held at a time.
    clock = conversation.clock
    mid = await member_id(conversation, "1001")
    rows_when_the_next_was_read: list[int] = []

    async with transaction(conversation.sessions) as session:

        async def pushes() -> AsyncIterator[Push]:
            for n in range(INSERT_CHUNK + 1):
                if n == INSERT_CHUNK:
                    statement = select(func.count()).select_from(OutboxItem)
                    rows_when_the_next_was_read.append((await session.exec(statement)).one())
                yield Push(mid, PushKind.NEWS, f"article:{n}", today(clock), "t", "b", clock.now())

        assert await outbox.enqueue(session, pushes(), clock.now()) == INSERT_CHUNK + 1
    assert rows_when_the_next_was_read == [INSERT_CHUNK]


def article(key: str) -> int | None:
    return outbox.article_of(OutboxItem(key=key))


def test_the_article_a_push_is_about_is_read_from_its_key() -> None:
    assert article("12:news:article:3:2026-11-25") == 3
    assert article("7:lesson:article:123456789012:2026-11-25") == 123456789012
    # The marker is read from the end of the reference.
    assert article("12:video:article:3:article:4:2026-11-25") == 4


def test_a_key_about_no_article_gives_none() -> None:
    assert article("12:review:entry:5:2026-11-25") is None
    assert article("5:news:day:2026-11-25") is None
    assert article("12:security:bind:7>wechat:2026-11-25") is None
    assert article("12:news:article:x3:2026-11-25") is None
    assert article("12:news:article:３:2026-11-25") is None  # a full-width digit
    assert article("7:lesson:article:1234567890123:2026-11-25") is None  # 13 digits: no id


def test_the_account_an_item_is_addressed_to_is_what_ends_its_reference() -> None:
    assert addressed("12:security:bind:7>x>wechat:2026-11-25") == "wechat"


async def test_a_timed_item_waits_for_its_time_and_then_comes_first(
    conversation: Conversation,
) -> None:
    now = conversation.clock.now()
    await enqueue(conversation, "1001", "news", now)
    await enqueue(conversation, "1001", "reminder", now + LEASE, ACTIVITY_REMINDER)
    mid = await member_id(conversation, "1001")

    async with transaction(conversation.sessions) as session:
        early = await outbox.waiting_for(session, mid, "wechat", now)
        on_time = await outbox.waiting_for(session, mid, "wechat", now + LEASE)
        any_time = await outbox.waiting_for(session, mid, "wechat")

    assert [item.brief for item in early] == ["news"]
    assert [item.brief for item in on_time] == ["reminder", "news"]
    assert [item.brief for item in any_time] == ["reminder", "news"]


async def test_a_claim_reads_no_further_than_the_oldest_rows_of_as_many_members(
    conversation: Conversation,
) -> None:
    # A claim of n members picks them from the n oldest due rows, so its cost does not grow
    # with the backlog (and on PostgreSQL it locks rows of its own members only): when one
    # member has two of the two oldest, the claim takes that member alone.
    now = conversation.clock.now()
    await enqueue(conversation, "1001", "old-1", now - dt.timedelta(hours=2))
    await enqueue(conversation, "1001", "old-2", now - dt.timedelta(minutes=90))
    await enqueue(conversation, "1002", "newer", now - dt.timedelta(hours=1))

    first = await claimed_members(conversation, 2)
    second = await claimed_members(conversation, 2)

    assert first == [await member_id(conversation, "1001")]
    assert second == [await member_id(conversation, "1002")]


async def test_a_deferred_item_takes_no_place_from_a_stalled_one(
    conversation: Conversation,
) -> None:
    now = conversation.clock.now()
    await enqueue(conversation, "1001", "due", now - dt.timedelta(minutes=1))
    await enqueue(conversation, "1002", "later", now + dt.timedelta(hours=1))
    await enqueue(conversation, "1003", "stalled", now - dt.timedelta(hours=1))
    await hold(conversation, "stalled", now - dt.timedelta(minutes=1))  # its dispatcher died

    async with transaction(conversation.sessions) as session:
        items = await outbox.claim_due(session, now, 2, LEASE)

    assert sorted(item.brief for item in items) == ["due", "stalled"]


async def test_a_claim_takes_over_an_expired_lease_not_a_live_one(
    conversation: Conversation,
) -> None:
    # The live lease and the one ending this very moment are older: a claim of one member
    # must still find the expired one.
    now = conversation.clock.now()
    await enqueue(conversation, "1001", "live", now - dt.timedelta(hours=3))
    await enqueue(conversation, "1002", "ends-now", now - dt.timedelta(hours=2))
    await enqueue(conversation, "1003", "expired", now - dt.timedelta(hours=1))
    await hold(conversation, "live", now + LEASE)
    await hold(conversation, "ends-now", now)
    await hold(conversation, "expired", now - dt.timedelta(seconds=1))

    async with transaction(conversation.sessions) as session:
        items = await outbox.claim_due(session, now, 1, LEASE)

    assert [(item.brief, item.lease_until) for item in items] == [("expired", now + LEASE)]
    assert (await item_of(conversation, "live")).lease_until == now + LEASE
    assert (await item_of(conversation, "ends-now")).lease_until == now


async def test_a_claims_items_of_a_member_come_by_priority_then_as_queued(
    conversation: Conversation,
) -> None:
    await enqueue(conversation, "1001", "a-news", kind=PushKind.NEWS)
    await enqueue(conversation, "1002", "b-news-1", kind=PushKind.NEWS)
    await enqueue(conversation, "1002", "b-lesson", kind=PushKind.LESSON)
    await enqueue(conversation, "1001", "a-reminder", kind=PushKind.REMINDER)
    await enqueue(conversation, "1002", "b-news-2", kind=PushKind.NEWS)

    async with transaction(conversation.sessions) as session:
        items = await outbox.claim_due(session, conversation.clock.now(), 10, LEASE)

    per_member: dict[int, list[str]] = {}
    for item in items:
        per_member.setdefault(item.member_id, []).append(item.brief)
    assert per_member == {
        await member_id(conversation, "1001"): ["a-reminder", "a-news"],
        await member_id(conversation, "1002"): ["b-lesson", "b-news-1", "b-news-2"],
    }


async def test_a_failed_item_retried_is_due_now_with_a_fresh_count(
    conversation: Conversation,
) -> None:
    clock = conversation.clock
    await enqueue(conversation, "1001", "first", clock.now() - dt.timedelta(hours=1))
    await enqueue(conversation, "1002", "second", clock.now() - dt.timedelta(hours=1))
    once = leases.Retries(max_attempts=1, base_seconds=60, rng=random.Random(1))
    await settle_due(conversation, lambda item, now: once.after(item, now, "errcode 45015"))
    first = await item_of(conversation, "first")
    assert (first.state, first.attempts) == ("failed", 1)

    later = clock.now() + dt.timedelta(days=1)
    async with transaction(conversation.sessions) as session:
        assert await outbox.retry_failed(session, later, first.id) == 1
    first, second = [await item_of(conversation, brief) for brief in ("first", "second")]
    assert (first.state, first.due_at, first.attempts) == ("pending", later, 0)
    assert second.state == "failed"

    async with transaction(conversation.sessions) as session:
        assert await outbox.retry_failed(session, later) == 1
    assert (await item_of(conversation, "second")).state == "pending"


async def test_a_withdrawn_reminder_is_skipped_and_waits_no_more(
    conversation: Conversation,
) -> None:
    now = conversation.clock.now()
    due = now + dt.timedelta(hours=5)
    for roster_id in ("1001", "1002"):
        await enqueue(conversation, roster_id, f"reminder-{roster_id}", due, kind=ACTIVITY_REMINDER)
    await enqueue(conversation, "1001", "news")
    mine = await item_of(conversation, "reminder-1001")

    async with transaction(conversation.sessions) as session:
        assert await outbox.withdraw(session, mine.key, now) == 1

    mine, theirs = [await item_of(conversation, f"reminder-{r}") for r in ("1001", "1002")]
    assert (mine.state, mine.last_error, mine.done_at) == ("skipped", outbox.WITHDRAWN, now)
    assert theirs.state == "pending"
    assert await waiting_briefs(conversation, "1001", None) == ["news"]


async def test_an_item_being_sent_is_not_withdrawn(conversation: Conversation) -> None:
    now = conversation.clock.now()
    await enqueue(conversation, "1001", "reminder", now, kind=ACTIVITY_REMINDER)
    await hold(conversation, "reminder", now + LEASE)
    key = (await item_of(conversation, "reminder")).key

    async with transaction(conversation.sessions) as session:
        assert await outbox.withdraw(session, key, now) == 0
    item = await item_of(conversation, "reminder")
    assert (item.state, item.last_error, item.done_at) == ("sending", "", None)


async def test_only_a_withdrawn_item_is_restored(conversation: Conversation) -> None:
    now = conversation.clock.now()
    for roster_id in ("1001", "1002"):
        await enqueue(
            conversation, roster_id, f"withdrawn-{roster_id}", now, kind=ACTIVITY_REMINDER
        )
        key = (await item_of(conversation, f"withdrawn-{roster_id}")).key
        async with transaction(conversation.sessions) as session:
            await outbox.withdraw(session, key, now)
    await enqueue(conversation, "1003", "unreachable", now, kind=ACTIVITY_REMINDER)
    await settle_due(
        conversation, lambda item, at: leases.done(item, OutboxState.SKIPPED, at, "no channel")
    )
    mine, unreachable = [await item_of(conversation, b) for b in ("withdrawn-1001", "unreachable")]
    due = now + dt.timedelta(hours=5)

    async with transaction(conversation.sessions) as session:
        assert await outbox.restore(session, mine.key, due) == 1
        assert await outbox.restore(session, unreachable.key, due) == 0

    restored = await item_of(conversation, "withdrawn-1001")
    assert (restored.state, restored.last_error, restored.done_at, restored.due_at) == (
        "pending",
        "",
        None,
        due,
    )
    assert (await item_of(conversation, "withdrawn-1002")).state == "skipped"
    assert (await item_of(conversation, "unreachable")).state == "skipped"
    async with transaction(conversation.sessions) as session:
        assert await outbox.restore(session, mine.key, due) == 0  # pending: nothing to restore
