"""The nightly clean-up (scheduler/jobs.py, 03:40) forgets what would only grow — processed
messages, seen WeChat nonces, bind failures, pushes done with their delivery attempts, group
posts done, notices shown — a batch per transaction, and keeps what must be kept: pending
and sending pushes, waiting notices, recent rows of every kind, and every audit row."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from typer.testing import CliRunner

import bot.cli_pushes
from bot.cli import app as cli_app
from bot.clock import FixedClock
from bot.conversation import Conversation
from data import audit, processed, retention, wecom_quota
from data.db import transaction
from data.models import (
    AuditEntry,
    BindFailure,
    DeliveryAttempt,
    GroupPost,
    MailboxItem,
    OutboxItem,
    ProcessedMessage,
    SeenRequest,
    Throttle,
)
from scheduler.jobs import PushJobs
from tests.conftest import MORNING, Chat
from tests.queries import member_id

NOW = MORNING
DAY = dt.timedelta(days=1)
OLD_DONE_STATES = ["sent", "fallback", "mailbox", "skipped", "failed"]


def ago(**delta: float) -> dt.datetime:
    return NOW - dt.timedelta(**delta)


def push(member: int, key: str, state: str, done_at: dt.datetime | None) -> OutboxItem:
    return OutboxItem(
        key=key,
        member_id=member,
        kind="reminder",
        priority=0,
        text=f"text of {key}",
        brief=key,
        day=(done_at or NOW).date(),
        due_at=ago(days=200),
        state=state,
        attempts=1,
        lease_until=NOW + dt.timedelta(minutes=2) if state == "sending" else None,
        done_at=done_at,
        created_at=ago(days=200),
    )


def post(key: str, state: str, done_at: dt.datetime | None) -> GroupPost:
    return GroupPost(
        key=key,
        channel="qq",
        group_id="123456",
        kind="lesson",
        text=key,
        day=NOW.date(),
        due_at=ago(days=200),
        state=state,
        done_at=done_at,
        created_at=ago(days=200),
    )


async def fill(conversation: Conversation) -> None:
    """Rows of every kind, some past their setting's age (the defaults: bind failures 30 days,
    pushes done and notices shown 90, WeChat nonces 2 × 300 s, processed messages 7 days)."""
    member = await member_id(conversation, "1001")
    async with transaction(conversation.sessions) as session:
        for days in (400, 31, 30.01):
            session.add(BindFailure(channel="wechat", external_id=f"old-{days}", at=ago(days=days)))
        session.add(BindFailure(channel="wechat", external_id="recent", at=ago(days=29.99)))

        for state in OLD_DONE_STATES:
            session.add(push(member, f"old-{state}", state, ago(days=90.01)))
        session.add(push(member, "recent-sent", "sent", ago(days=89.99)))
        session.add(push(member, "old-pending", "pending", None))
        session.add(push(member, "old-sending", "sending", None))
        # A failed push taken back by `qiyi outbox retry` keeps its old done_at: not done.
        session.add(push(member, "retried-pending", "pending", ago(days=120)))

        session.add(post("old-posted", "sent", ago(days=91)))
        session.add(post("recent-posted", "sent", ago(days=89)))
        session.add(post("old-pending-post", "pending", None))

        for text, shown in (("old-shown", 90.01), ("recent-shown", 89.99), ("old-waiting", None)):
            delivered_at = None if shown is None else ago(days=shown)
            session.add(
                MailboxItem(
                    member_id=member, text=text, created_at=ago(days=200), delivered_at=delivered_at
                )
            )

        # WeCom sends count for an hour and the day: kept two days.
        for key, days in (("old", 2.01), ("recent", 1.99)):
            session.add(Throttle(scope=wecom_quota.SCOPE, key=key, at=ago(days=days)))
        session.add(Throttle(scope="console-page", key="old-other-scope", at=ago(days=3)))

        for nonce, minutes in (("old", 10.01), ("recent", 9.99)):
            seen = ago(minutes=minutes)
            session.add(
                SeenRequest(
                    channel="wechat",
                    timestamp=int(seen.timestamp()),
                    nonce=nonce,
                    body_hash="0" * 64,
                    created_at=seen,
                )
            )

        for key, days in (("old-message", 7.01), ("recent-message", 6.99)):
            created = ago(days=days)
            session.add(ProcessedMessage(channel="wechat", key=key, reply="", created_at=created))

        actor = audit.Actor(audit.Door.SYSTEM, "test")
        await audit.record(
            session,
            actor,
            "member.unbind",
            object_type="member",
            object_id=member,
            branch_id=None,
            at=ago(days=4000),
        )
    # Every old push done has two tries recorded; the recent one, one.
    async with transaction(conversation.sessions) as session:
        for item in await session.exec(select(OutboxItem)):
            tries = 2 if item.brief.startswith("old-") else 1
            for number in range(tries):
                last = number == tries - 1
                attempt = DeliveryAttempt(outbox_id=item.id, at=ago(days=91), method="c", ok=last)
                session.add(attempt)


async def names(conversation: Conversation, column: Any, *where: Any) -> list[str]:
    async with conversation.sessions() as session:
        return sorted(str(value) for value in await session.exec(select(column).where(*where)))


def counting(
    forget: Callable[[AsyncSession, dt.datetime, int], Awaitable[int]], calls: list[int]
) -> Callable[[AsyncSession, dt.datetime, int], Awaitable[int]]:
    async def spy(session: AsyncSession, before: dt.datetime, limit: int) -> int:
        done = await forget(session, before, limit)
        calls.append(done)
        return done

    return spy


async def test_the_clean_up_deletes_what_is_old_in_batches_and_keeps_the_rest(
    chat: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation = chat.conversation
    await fill(conversation)
    monkeypatch.setattr(retention, "PRUNE_BATCH", 2)
    monkeypatch.setattr(processed, "PRUNE_BATCH", 2)
    delivered_batches: list[int] = []
    failure_batches: list[int] = []
    monkeypatch.setattr(
        retention, "forget_delivered", counting(retention.forget_delivered, delivered_batches)
    )
    monkeypatch.setattr(
        retention,
        "forget_bind_failures",
        counting(retention.forget_bind_failures, failure_batches),
    )
    clock = FixedClock(NOW)

    forgotten = await PushJobs(conversation.settings, clock, conversation.sessions).clean_up()

    assert forgotten == {
        "processed": 1,
        "seen_requests": 1,
        "bind_failures": 3,
        "delivered": 5,
        "group_posts": 1,
        "shown_notices": 1,
        "roster_drafts": 0,
        "wecom_sends": 1,
    }
    # Five pushes done in batches of two: three transactions; three failures: two.
    assert delivered_batches == [2, 2, 1]
    assert failure_batches == [2, 1]

    assert await names(conversation, BindFailure.external_id) == ["recent"]
    assert await names(conversation, OutboxItem.key) == [
        "old-pending",
        "old-sending",
        "recent-sent",
        "retried-pending",
    ]
    # The attempts went with their pushes, and only those.
    kept_ids = await names(conversation, OutboxItem.id)
    attempts = await names(conversation, DeliveryAttempt.outbox_id)
    assert sorted(set(attempts)) == sorted(kept_ids)
    assert len(attempts) == 2 + 2 + 1 + 1  # old-pending, old-sending, recent, retried
    assert await names(conversation, GroupPost.key) == ["old-pending-post", "recent-posted"]
    assert await names(conversation, MailboxItem.text) == ["old-waiting", "recent-shown"]
    assert await names(conversation, SeenRequest.nonce) == ["recent"]
    messages = col(ProcessedMessage.key).contains("message")
    assert await names(conversation, ProcessedMessage.key, messages) == ["recent-message"]
    assert await names(conversation, AuditEntry.action) == ["member.unbind"]
    assert await names(conversation, Throttle.key) == ["old-other-scope", "recent"]


async def test_the_ages_come_from_the_settings(chat: Chat) -> None:
    conversation = chat.conversation
    await fill(conversation)
    settings = conversation.settings.model_copy(
        update={"keep_bind_failures_days": 500, "keep_delivered_days": 89, "keep_mailbox_days": 365}
    )

    forgotten = await PushJobs(settings, FixedClock(NOW), conversation.sessions).clean_up()

    assert forgotten["bind_failures"] == 0
    assert forgotten["delivered"] == 6  # the recent one is 89.99 days old
    assert forgotten["shown_notices"] == 0
    assert await names(conversation, OutboxItem.key) == [
        "old-pending",
        "old-sending",
        "retried-pending",
    ]


async def test_a_second_run_finds_nothing_more(chat: Chat) -> None:
    conversation = chat.conversation
    await fill(conversation)
    jobs = PushJobs(conversation.settings, FixedClock(NOW), conversation.sessions)
    await jobs.clean_up()

    again = await jobs.clean_up()

    assert set(again.values()) == {0}


@pytest.fixture
def fixed_cli_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def fixed_clock(zone: ZoneInfo) -> FixedClock:
        return FixedClock(MORNING, zone)

    monkeypatch.setattr(bot.cli_pushes, "SystemClock", fixed_clock)
    yield


def test_jobs_list_shows_the_clean_up_with_its_ages(
    sqlite_url: str, fixed_cli_clock: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    env = {
        "QIYI_DATABASE_URL": sqlite_url,
        "QIYI_KEEP_BIND_FAILURES_DAYS": "14",
        "QIYI_KEEP_DELIVERED_DAYS": "120",
        "QIYI_KEEP_MAILBOX_DAYS": "60",
        "COLUMNS": "400",
    }
    result = CliRunner().invoke(cli_app, ["jobs", "list"], env=env)

    assert result.exit_code == 0, result.output
    [line] = [line for line in result.output.splitlines() if "forget_processed" in line]
    assert "2026-11-26 03:40 CST" in line
    assert "processed messages after 7 days" in line
    assert "bind failures after 14" in line
    assert "pushes done and their attempts after 120" in line
    assert "notices shown after 60" in line
    assert "WeChat nonces" in line
