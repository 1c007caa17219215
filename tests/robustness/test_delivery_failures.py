"""Whatever a call raises, the dispatcher round goes on: the items it was for get a recorded
attempt and are retried (when it may pass) or failed (when it will not), the other members
are served, and no row is left `sending` to be sent again when its lease runs out.

Before, any exception but `TransientError` — the token endpoint's 40164, an answer that is
not JSON, a bug — aborted the round with its rows leased and no attempt recorded: when the
lease ended they went again (the same reminder twice), and no admin heard of the 40164.
"""

# ruff: noqa: F401, F811 (the dispatcher tests' fixtures are imported and used by name)
from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter

import pytest
from sqlmodel import select

import bot.dispatcher
import bot.wechat_rungs
from bot.conversation import Conversation
from data.models import OutboxItem, PushKind
from tests.fakes.wechat_api import CUSTOM_SEND, STABLE_TOKEN, FakeWeChat
from tests.test_dispatcher import (  # the rig's fixtures (fake, http, make_rig, rig) too
    ADMIN,
    Rig,
    RigFactory,
    attempt_rows,
    attempts_of,
    bind_wechat,
    fake,
    http,
    items_of,
    mailbox_of,
    make_rig,
    openid,
    push,
    reload,
    rig,
    set_window,
    states,
)


async def sending_rows(conversation: Conversation) -> list[OutboxItem]:
    async with conversation.sessions() as session:
        statement = select(OutboxItem).where(OutboxItem.state == "sending")
        return list(await session.exec(statement))


async def two_members_due(conversation: Conversation) -> tuple[OutboxItem, OutboxItem]:
    await bind_wechat(conversation, "1001", "1002")
    await set_window(conversation, "1001")
    await set_window(conversation, "1002")
    first = await push(conversation, "1001", PushKind.REMINDER, "study")
    second = await push(conversation, "1002", PushKind.REMINDER, "study")
    return first, second


def after_the_lease(rig: Rig) -> None:
    rig.clock.advance(seconds=rig.settings.delivery_lease_seconds + 1)


@pytest.mark.parametrize(
    ("errcode", "explained"),
    [(40164, "白名单"), (40125, "AppSecret"), (40013, "AppID")],
    ids=["ip-not-whitelisted", "bad-secret", "bad-appid"],
)
async def test_token_endpoint_refusal_fails_each_item_once_and_alerts_the_admins(
    conversation: Conversation, rig: Rig, errcode: int, explained: str
) -> None:
    first, second = await two_members_due(conversation)
    rig.fake.fail_next(STABLE_TOKEN, errcode, times=10)  # until the configuration is fixed

    counts = await rig.run()

    assert counts == Counter(failed=2, mailbox=1) or counts == Counter(failed=2)
    for item in (first, second):
        row = await reload(conversation, item)
        assert (row.state, row.lease_until) == ("failed", None)
        assert row.last_error.startswith(f"{errcode} ")
        assert await attempts_of(conversation, row) == [("custom", False, errcode)]
    assert rig.fake.calls(CUSTOM_SEND) == []
    asked = len(rig.fake.calls(STABLE_TOKEN))
    assert 1 <= asked <= 2  # at most once per bundle, not once per retry
    assert await sending_rows(conversation) == []

    await rig.run()  # the alert may reach its mailbox in the next round
    (alert,) = await mailbox_of(conversation, ADMIN)
    assert str(errcode) in alert.text and explained in alert.text

    # Nothing goes again, however long one waits: failed stays failed.
    after_the_lease(rig)
    assert await rig.run() == Counter()
    rig.clock.advance(hours=1)
    assert await rig.run() == Counter()
    assert rig.fake.sent_texts() == []
    assert len(rig.fake.calls(STABLE_TOKEN)) == asked
    assert len(await mailbox_of(conversation, ADMIN)) == 1  # once a day


async def test_an_answer_that_is_not_json_is_retried_and_the_others_are_sent(
    conversation: Conversation, rig: Rig
) -> None:
    first, second = await two_members_due(conversation)
    rig.fake.fail_http(CUSTOM_SEND, 200)  # HTTP 200 with a gateway's text page

    assert await rig.run() == Counter(sent=1, retry=1)

    rows = {item.key: await reload(conversation, item) for item in (first, second)}
    (refused,) = [row for row in rows.values() if row.state == "pending"]
    (sent,) = [row for row in rows.values() if row.state == "sent"]
    assert refused.attempts == 1 and refused.lease_until is None
    assert "not JSON" in refused.last_error
    (attempt,) = await attempt_rows(conversation, refused)
    assert (attempt.method, attempt.ok, attempt.errcode) == ("custom", False, None)
    assert await attempts_of(conversation, sent) == [("custom", True, 0)]
    assert await sending_rows(conversation) == []

    # After the backoff it goes, once; the one already sent does not go again.
    rig.clock.set(refused.due_at + dt.timedelta(seconds=1))
    assert await rig.run() == Counter(sent=1)
    assert sorted(rig.fake.sent_texts()) == sorted([first.text, second.text])


async def test_an_unexpected_error_for_one_member_fails_only_their_push(
    conversation: Conversation, rig: Rig
) -> None:
    first, second = await two_members_due(conversation)
    send_text = rig.api.send_text

    async def broken_for_1001(target: str, content: str) -> object:
        if target == openid("1001"):
            raise RuntimeError("a bug on the way out")
        return await send_text(target, content)

    rig.api.send_text = broken_for_1001  # type: ignore[method-assign]

    assert await rig.run() == Counter(sent=1, failed=1)

    broken = await reload(conversation, first)
    assert (broken.state, broken.lease_until) == ("failed", None)
    assert broken.last_error == "RuntimeError: a bug on the way out"
    assert await attempts_of(conversation, broken) == [("custom", False, None)]
    assert (await reload(conversation, second)).state == "sent"
    assert rig.fake.sent_texts() == [second.text]
    assert await sending_rows(conversation) == []

    after_the_lease(rig)
    assert await rig.run() == Counter()
    assert rig.fake.sent_texts() == [second.text]


async def test_an_error_outside_any_call_still_settles_the_bundle(
    conversation: Conversation, rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = await two_members_due(conversation)
    cut_to_fit = bot.wechat_rungs.cut_to_fit

    def broken(text: str) -> str:
        if text == first.text:
            raise KeyError("a bug before the call")
        return cut_to_fit(text)

    monkeypatch.setattr(bot.wechat_rungs, "cut_to_fit", broken)

    assert await rig.run() == Counter(sent=1, failed=1)

    row = await reload(conversation, first)
    assert (row.state, row.lease_until) == ("failed", None)
    assert await attempts_of(conversation, row) == [("dispatch", False, None)]
    assert (await reload(conversation, second)).state == "sent"
    assert await sending_rows(conversation) == []
    after_the_lease(rig)
    assert await rig.run() == Counter()
    assert rig.fake.sent_texts() == [second.text]


async def test_a_token_endpoint_that_is_down_is_retried_with_backoff(
    conversation: Conversation, make_rig: RigFactory
) -> None:
    rig = make_rig(delivery_backoff_seconds=60)
    first, second = await two_members_due(conversation)
    rig.fake.fail_next(STABLE_TOKEN, -1, times=2)  # system busy, for a while

    assert await rig.run() == Counter(retry=2)

    for item in (first, second):
        row = await reload(conversation, item)
        assert (row.state, row.attempts) == ("pending", 1)
        assert await attempts_of(conversation, row) == [("custom", False, -1)]
    assert await mailbox_of(conversation, ADMIN) == []  # passing trouble alerts nobody

    rig.clock.advance(seconds=91)
    assert await rig.run() == Counter(sent=2)
    assert sorted(rig.fake.sent_texts()) == sorted([first.text, second.text])
    assert await states(conversation) == {first.key: "sent", second.key: "sent"}


async def test_a_dispatcher_that_lost_its_lease_does_not_send(
    conversation: Conversation, rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = await two_members_due(conversation)
    other = rig.another_dispatcher()
    stalled = rig.dispatcher.limiter.acquire
    took_over: list[Counter[str]] = []
    stall = asyncio.Lock()

    async def stall_past_the_lease() -> None:
        # This dispatcher stalls (a long GC pause, a suspended VM) before its first send; its
        # lease runs out and the other dispatcher claims and sends everything meanwhile.
        async with stall:
            if not took_over:
                after_the_lease(rig)
                took_over.append(await other.run_once())
        await stalled()

    monkeypatch.setattr(rig.dispatcher.limiter, "acquire", stall_past_the_lease)

    assert await rig.run() == Counter()

    assert took_over == [Counter(sent=2)]
    assert sorted(rig.fake.sent_texts()) == sorted([first.text, second.text])  # once each
    for item in (first, second):
        row = await reload(conversation, item)
        assert (row.state, row.lease_until) == ("sent", None)
        assert await attempts_of(conversation, row) == [("custom", True, 0)]
    assert await sending_rows(conversation) == []
