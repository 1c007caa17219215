"""The delivery ladder across channels with the fakes: WeChat (customer-service and template
messages), WeCom (app messages, with its per-member and daily limits) and QQ through OneBot,
all on loopback, one dispatcher over the test database (README: "The delivery ladder")."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import func, insert, update
from sqlmodel import col, select

from bot import dispatcher as dispatcher_module
from bot import pushes
from bot.channels.onebot_api import OneBotApi
from bot.channels.wechat_api import WeChatApi
from bot.channels.wecom_api import WeComApi
from bot.clock import FixedClock, today
from bot.conversation import Conversation
from bot.dispatcher import Dispatcher
from bot.ladder import (
    DEFAULT_ORDER,
    Rung,
    parse_order,
    reachable_rungs,
    rung_names,
    window_open,
)
from bot.messages import Sender, cut_to_fit
from bot.roster import RosterRow
from bot.settings import ConfigError, Settings, load_settings
from data import groups, members, outbox, wecom_quota
from data.audit import Actor, Door
from data.db import transaction
from data.models import (
    Article,
    Binding,
    DeliveryAttempt,
    GroupPost,
    MailboxItem,
    Member,
    OutboxItem,
    PushKind,
    Role,
    Throttle,
)
from data.outbox import Push
from tests.conftest import SHANGHAI, make_settings
from tests.fakes.onebot import SEND_GROUP, SEND_PRIVATE, FakeOneBot
from tests.fakes.wechat_api import CUSTOM_SEND, TEMPLATE_SEND, FakeWeChat
from tests.fakes.wecom_api import ERRMSGS, GETTOKEN, MESSAGE_SEND, FakeWeCom
from tests.queries import member_id

ServerFactory = Callable[..., Awaitable[TestServer]]

EVENING = dt.datetime(2026, 11, 25, 20, 30, tzinfo=SHANGHAI)
QQ_OF = {"1001": "10001", "1002": "10002", "1003": "10003", "2001": "20001"}


def userid(roster_id: str) -> str:
    return f"wecom-{roster_id}"


def openid(roster_id: str) -> str:
    return f"openid-{roster_id}"


@dataclass
class Rig:
    conversation: Conversation
    clock: FixedClock
    settings: Settings
    wechat: FakeWeChat
    wecom: FakeWeCom
    onebot: FakeOneBot
    dispatcher: Dispatcher

    async def run(self) -> Counter[str]:
        return await self.dispatcher.run_once()

    async def enqueue_reminders(self) -> int:
        async with transaction(self.conversation.sessions) as session:
            return (await pushes.enqueue_reminders(session, self.settings, self.clock)).count

    def wecom_texts(self, roster_id: str) -> list[str]:
        """What the member was shown in WeCom (text content or a card's title)."""
        return [
            shown.content.get("content") or shown.content.get("title", "")
            for shown in self.wecom.shown
            if shown.user == userid(roster_id)
        ]

    def qq_texts(self, roster_id: str) -> list[str]:
        return [str(sent.message) for sent in self.onebot.private_messages(int(QQ_OF[roster_id]))]


RigFactory = Callable[..., Rig]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def make_rig(
    aiohttp_server: ServerFactory,
    database_url: str,
    conversation: Conversation,
    clock: FixedClock,
    http: aiohttp.ClientSession,
) -> RigFactory:
    wechat = FakeWeChat()
    wecom = FakeWeCom(clock=lambda: clock.now().timestamp())
    onebot = FakeOneBot(access_token="onebot-token")
    bases = [
        str((await aiohttp_server(fake.app())).make_url("")).rstrip("/")
        for fake in (wechat, wecom, onebot)
    ]

    def build(**overrides: object) -> Rig:
        values: dict[str, object] = {
            "wechat_appid": wechat.appid,
            "wechat_secret": wechat.secret,
            "wechat_api_base": bases[0],
            "wecom_corp_id": wecom.corp_id,
            "wecom_agent_id": wecom.agent_id,
            "wecom_secret": wecom.secret,
            "wecom_api_base": bases[1],
            "onebot_api_url": bases[2],
            "onebot_access_token": "onebot-token",
            "onebot_send_interval_seconds": 0,
            "delivery_rate": 10000,
            "wecom_delivery_rate": 160,
            "delivery_concurrency": 10,
        }
        values.update(overrides)
        settings = make_settings(database_url, **values)
        sessions = conversation.sessions
        dispatcher = Dispatcher(
            settings,
            clock,
            sessions,
            WeChatApi(
                http, sessions, clock, base=bases[0], appid=wechat.appid, secret=wechat.secret
            ),
            rng=random.Random(0),
            onebot=OneBotApi(http, settings),
            wecom=WeComApi(
                http,
                sessions,
                clock,
                base=bases[1],
                corp_id=wecom.corp_id,
                agent_id=wecom.agent_id,
                secret=wecom.secret,
            ),
        )
        return Rig(conversation, clock, settings, wechat, wecom, onebot, dispatcher)

    return build


@pytest.fixture
def rig(make_rig: RigFactory) -> Rig:
    return make_rig()


# --- helpers --------------------------------------------------------------------------------


async def bind(conversation: Conversation, roster_id: str, *channels: str) -> None:
    """Bind the member on each channel (`wechat`: window closed)."""
    accounts = {"wechat": openid(roster_id), "wecom": userid(roster_id), "qq": QQ_OF[roster_id]}
    async with transaction(conversation.sessions) as session:
        member = await members.member_by_roster_id(session, roster_id)
        assert member is not None
        for channel in channels:
            sender = Sender(channel, accounts[channel])
            await members.bind(session, sender, member, conversation.clock.now())


async def open_window(conversation: Conversation, roster_id: str) -> None:
    mid = await member_id(conversation, roster_id)
    async with transaction(conversation.sessions) as session:
        statement = select(Binding).where(Binding.member_id == mid, Binding.channel == "wechat")
        binding = (await session.exec(statement)).one()
        binding.window_until = conversation.clock.now() + dt.timedelta(hours=48)
        binding.window_budget = 5
        session.add(binding)


async def binding_of(conversation: Conversation, roster_id: str, channel: str) -> Binding:
    mid = await member_id(conversation, roster_id)
    async with conversation.sessions() as session:
        statement = select(Binding).where(Binding.member_id == mid, Binding.channel == channel)
        return (await session.exec(statement)).one()


async def items_of(conversation: Conversation, roster_id: str) -> list[OutboxItem]:
    mid = await member_id(conversation, roster_id)
    async with conversation.sessions() as session:
        statement = select(OutboxItem).where(OutboxItem.member_id == mid)
        return list(await session.exec(statement.order_by(col(OutboxItem.id))))


async def attempts_of(conversation: Conversation, roster_id: str) -> list[tuple[str, bool]]:
    mid = await member_id(conversation, roster_id)
    async with conversation.sessions() as session:
        statement = (
            select(DeliveryAttempt.method, DeliveryAttempt.ok)
            .join(OutboxItem, col(OutboxItem.id) == col(DeliveryAttempt.outbox_id))
            .where(OutboxItem.member_id == mid)
            .order_by(col(DeliveryAttempt.id))
        )
        return [(method, ok) for method, ok in await session.exec(statement)]


async def attempt_rows(
    conversation: Conversation, roster_id: str
) -> list[tuple[int, str, bool, int | None, str]]:
    """(item, method, ok, errcode, detail) of each of the member's attempts, in order."""
    mid = await member_id(conversation, roster_id)
    async with conversation.sessions() as session:
        statement = (
            select(
                DeliveryAttempt.outbox_id,
                DeliveryAttempt.method,
                DeliveryAttempt.ok,
                DeliveryAttempt.errcode,
                DeliveryAttempt.detail,
            )
            .join(OutboxItem, col(OutboxItem.id) == col(DeliveryAttempt.outbox_id))
            .where(OutboxItem.member_id == mid)
            .order_by(col(DeliveryAttempt.id))
        )
        return [tuple(row) for row in await session.exec(statement)]  # type: ignore[misc]


async def attempt_details(
    conversation: Conversation, roster_id: str
) -> list[tuple[str, bool, str]]:
    rows = await attempt_rows(conversation, roster_id)
    return [(method, ok, detail) for _, method, ok, _, detail in rows]


async def mailbox_of(conversation: Conversation, roster_id: str) -> list[str]:
    mid = await member_id(conversation, roster_id)
    async with conversation.sessions() as session:
        statement = select(MailboxItem.text).where(MailboxItem.member_id == mid)
        return list(await session.exec(statement))


async def wecom_slots(conversation: Conversation) -> int:
    async with conversation.sessions() as session:
        statement = select(func.count()).where(Throttle.scope == wecom_quota.SCOPE)
        return int((await session.exec(statement)).one())


async def push(
    conversation: Conversation,
    roster_id: str,
    ref: str,
    due_at: dt.datetime,
    kind: PushKind = PushKind.NOTICE,
) -> OutboxItem:
    mid = await member_id(conversation, roster_id)
    now = conversation.clock.now()
    row = Push(
        mid,
        kind,
        ref,
        today(conversation.clock),
        f"通知 {ref}",
        f"通知 {ref}",
        due_at,
    )
    async with transaction(conversation.sessions) as session:
        assert await outbox.enqueue(session, [row], now) == 1
    async with conversation.sessions() as session:
        return (await session.exec(select(OutboxItem).where(OutboxItem.key == row.key))).one()


# --- the rungs, in one evening round ---------------------------------------------------------


async def test_each_member_gets_the_evening_reminder_on_their_best_rung_in_one_round(
    rig: Rig,
) -> None:
    conversation = rig.conversation
    await bind(conversation, "1001", "wechat", "wecom")  # out of WeChat's window
    await bind(conversation, "1002", "wechat", "qq")  # window open, but unfollowed
    await open_window(conversation, "1002")
    rig.wechat.not_following(openid("1002"))
    await bind(conversation, "1003", "wechat")  # out of the window, no template
    await bind(conversation, "2001", "wechat", "wecom")  # window open: WeChat first
    await open_window(conversation, "2001")
    rig.clock.set(EVENING)
    assert await rig.enqueue_reminders() == 4

    counts = await rig.run()

    assert counts == Counter(sent=3, mailbox=1)
    # 1001: on WeCom that evening, not in the mailbox.
    [shown] = rig.wecom_texts("1001")
    assert "张三，今天已学习 0/120 分钟" in shown
    assert await attempts_of(conversation, "1001") == [("wecom", True)]
    assert await mailbox_of(conversation, "1001") == []
    # 1002: WeChat said 43004, QQ took it in the same round.
    [on_qq] = rig.qq_texts("1002")
    assert "李四，今天已学习 0/120 分钟" in on_qq
    assert await attempts_of(conversation, "1002") == [("custom", False), ("qq", True)]
    assert (await binding_of(conversation, "1002", "wechat")).reachable is False
    assert [item.state for item in await items_of(conversation, "1002")] == ["sent"]
    # 1003: only WeChat, outside the window, no template: the mailbox.
    assert await attempts_of(conversation, "1003") == [("mailbox", True)]
    assert len(await mailbox_of(conversation, "1003")) == 1
    # 2001: the open window comes first; WeCom is not used.
    assert len(rig.wechat.sent_texts(openid("2001"))) == 1
    assert rig.wecom_texts("2001") == []
    # Exactly one WeCom slot stays counted: 1001's message (2001's reservation was released).
    assert len(rig.wecom.calls(MESSAGE_SEND)) == 1
    assert await wecom_slots(conversation) == 1


async def test_the_configured_order_changes_the_choice(make_rig: RigFactory) -> None:
    rig = make_rig(delivery_order="wecom,wechat-window")
    conversation = rig.conversation
    await bind(conversation, "2001", "wechat", "wecom")
    await open_window(conversation, "2001")
    await bind(conversation, "1001", "wechat", "qq")  # no WeCom: the window, as ordered next
    await open_window(conversation, "1001")
    rig.clock.set(EVENING)
    assert await rig.enqueue_reminders() == 2

    assert await rig.run() == Counter(sent=2)

    assert len(rig.wecom_texts("2001")) == 1
    assert rig.wechat.sent_texts(openid("2001")) == []
    assert len(rig.wechat.sent_texts(openid("1001"))) == 1
    assert rig.qq_texts("1001") == []  # QQ is not in this ladder at all


async def test_the_default_order_puts_qq_before_the_template(make_rig: RigFactory) -> None:
    rig = make_rig(wechat_template_reminder="tmpl-reminder")
    await bind(rig.conversation, "1001", "wechat", "qq")
    rig.clock.set(EVENING)
    assert await rig.enqueue_reminders() == 1

    assert await rig.run() == Counter(sent=1)

    assert len(rig.qq_texts("1001")) == 1
    assert rig.wechat.calls(TEMPLATE_SEND) == []


# --- failures for good move on, transient ones stay --------------------------------------------


async def test_out_of_range_marks_wecom_unreachable_and_goes_to_the_next_rung(rig: Rig) -> None:
    conversation = rig.conversation
    await bind(conversation, "1001", "wecom", "qq")
    rig.wecom.out_of_range(userid("1001"))
    rig.clock.set(EVENING)
    assert await rig.enqueue_reminders() == 1

    assert await rig.run() == Counter(sent=1)

    assert await attempts_of(conversation, "1001") == [("wecom", False), ("qq", True)]
    assert len(rig.qq_texts("1001")) == 1
    assert (await binding_of(conversation, "1001", "wecom")).reachable is False
    assert await wecom_slots(conversation) == 0  # nothing was shown: the slot is released

    # The next push does not try WeCom again.
    await push(conversation, "1001", "next", rig.clock.now())
    assert await rig.run() == Counter(sent=1)
    assert len(rig.wecom.calls(MESSAGE_SEND)) == 1
    assert len(rig.qq_texts("1001")) == 2


async def test_qq_not_a_friend_goes_to_the_mailbox_in_the_same_round(rig: Rig) -> None:
    conversation = rig.conversation
    await bind(conversation, "1001", "qq")
    rig.onebot.fail_next(SEND_PRIVATE, 1400, "无法获取用户信息")
    rig.clock.set(EVENING)
    assert await rig.enqueue_reminders() == 1

    assert await rig.run() == Counter(mailbox=1)

    assert await attempts_of(conversation, "1001") == [("qq", False), ("mailbox", True)]


async def test_unfollowed_everywhere_is_skipped_not_mailed(rig: Rig) -> None:
    conversation = rig.conversation
    await bind(conversation, "1001", "wechat", "wecom")
    await open_window(conversation, "1001")
    rig.wechat.not_following(openid("1001"))
    rig.wecom.out_of_range(userid("1001"))
    rig.clock.set(EVENING)
    assert await rig.enqueue_reminders() == 1

    assert await rig.run() == Counter(skipped=1)

    assert await attempts_of(conversation, "1001") == [("custom", False), ("wecom", False)]
    [item] = await items_of(conversation, "1001")
    assert item.last_error.startswith("81013")
    assert await mailbox_of(conversation, "1001") == []


def _busy(fake: FakeWeCom) -> None:
    fake.fail_next(MESSAGE_SEND, -1)


def _gateway(fake: FakeWeCom) -> None:
    fake.fail_http(MESSAGE_SEND, 502)


@pytest.mark.parametrize(
    ("fail", "counted"),
    [(_busy, 0), (_gateway, 1)],
    ids=["busy", "http-502"],
)
async def test_a_transient_failure_is_retried_on_wecom_and_the_row_keys_the_duplicate_check(
    rig: Rig, fail: Callable[[FakeWeCom], None], counted: int
) -> None:
    conversation = rig.conversation
    await bind(conversation, "1001", "wecom", "qq")
    rig.clock.set(EVENING)
    assert await rig.enqueue_reminders() == 1
    fail(rig.wecom)

    assert await rig.run() == Counter(retry=1)
    assert rig.qq_texts("1001") == []  # transient: not the next rung
    [item] = await items_of(conversation, "1001")
    assert (item.state, item.attempts) == ("pending", 1)
    # WeCom's busy answer showed nothing; after a 502 nobody knows: the slot stays counted.
    assert await wecom_slots(conversation) == counted

    rig.clock.advance(seconds=46)  # the backoff is 30 s ± 50%
    assert await rig.run() == Counter(sent=1)
    assert len(rig.wecom_texts("1001")) == 1
    first, second = rig.wecom.calls(MESSAGE_SEND)
    # The duplicate check reaches back to the row's creation (plus a minute), no further.
    assert first.body["duplicate_check_interval"] == 60
    assert second.body["duplicate_check_interval"] == 60 + 46
    assert first.body[first.body["msgtype"]] == second.body[second.body["msgtype"]]


async def test_a_resend_of_the_same_row_is_not_shown_twice(rig: Rig) -> None:
    """An answer lost after WeCom showed the message: the row is sent again, the same
    content within the interval, and WeCom's duplicate check drops it."""
    conversation = rig.conversation
    await bind(conversation, "1001", "wecom")
    rig.clock.set(EVENING)
    assert await rig.enqueue_reminders() == 1
    assert await rig.run() == Counter(sent=1)
    [item] = await items_of(conversation, "1001")
    async with transaction(conversation.sessions) as session:
        # As if the dispatcher had died after WeCom showed it, before recording the answer.
        item.state, item.due_at = "pending", rig.clock.now()
        session.add(item)
    rig.clock.advance(minutes=5)

    assert await rig.run() == Counter(sent=1)

    assert len(rig.wecom.calls(MESSAGE_SEND)) == 2
    assert len(rig.wecom_texts("1001")) == 1


# --- WeCom's limits ------------------------------------------------------------------------


async def test_the_per_member_rate_is_never_exceeded_with_40_pushes_due(rig: Rig) -> None:
    conversation = rig.conversation
    await bind(conversation, "1001", "wecom")
    start = rig.clock.now()
    for n in range(40):
        await push(conversation, "1001", f"n{n}", start + dt.timedelta(seconds=n))
    sent_at: list[dt.datetime] = []
    for _second in range(200):
        before = len(rig.wecom.calls(MESSAGE_SEND))
        await rig.run()
        sent_at += [rig.clock.now()] * (len(rig.wecom.calls(MESSAGE_SEND)) - before)
        rig.clock.advance(seconds=1)

    assert all(item.state == "sent" for item in await items_of(conversation, "1001"))
    shown = "\n".join(rig.wecom_texts("1001"))
    assert all(f"通知 n{n}" in shown for n in range(40))
    most = max(
        sum(at <= other < at + dt.timedelta(minutes=1) for other in sent_at) for at in sent_at
    )
    assert most == 30  # the limit reached, never passed
    assert len(sent_at) == 31  # the 10 that waited went together once a slot freed
    assert sent_at[30] == start + dt.timedelta(seconds=60)


async def test_the_hourly_limit_defers_until_the_hour_frees(make_rig: RigFactory) -> None:
    rig = make_rig(wecom_member_per_hour=3)
    conversation = rig.conversation
    await bind(conversation, "1001", "wecom")
    start = rig.clock.now()
    for n in range(4):
        await push(conversation, "1001", f"n{n}", start + dt.timedelta(minutes=n))
        rig.clock.set(start + dt.timedelta(minutes=n))
        await rig.run()

    assert len(rig.wecom.calls(MESSAGE_SEND)) == 3
    waiting = (await items_of(conversation, "1001"))[3]
    assert waiting.state == "pending"
    assert waiting.attempts == 0  # waiting is not a try
    assert waiting.due_at == start + dt.timedelta(hours=1)
    assert waiting.last_error == "waits for WeCom's per-member limit"

    rig.clock.set(start + dt.timedelta(hours=1))
    assert await rig.run() == Counter(sent=1)
    assert len(rig.wecom.calls(MESSAGE_SEND)) == 4


async def seed_roster(conversation: Conversation, n: int) -> list[str]:
    """N more members, each bound on WeCom only; returns their roster ids."""
    now = conversation.clock.now()
    rows = [RosterRow(str(500_000 + i), f"成员{i}", "第一党支部", Role.MEMBER) for i in range(n)]
    async with transaction(conversation.sessions) as session:
        await members.upsert_roster(session, rows, now)
    async with transaction(conversation.sessions) as session:
        ids = {
            roster_id: mid
            for roster_id, mid in await session.exec(
                select(Member.roster_id, Member.id).where(col(Member.roster_id) >= "500000")
            )
        }
        bindings = [
            {
                "channel": "wecom",
                "external_id": userid(row.member_id),
                "member_id": ids[row.member_id],
                "reachable": True,
                "bound_at": now,
                "window_budget": 0,
                "window_used": 0,
            }
            for row in rows
        ]
        await session.exec(insert(Binding), params=bindings)  # type: ignore[call-overload]
    return [row.member_id for row in rows]


async def test_500_members_on_wecom_within_the_daily_cap(make_rig: RigFactory) -> None:
    rig = make_rig(wecom_daily_cap=400)
    conversation = rig.conversation
    roster = await seed_roster(conversation, 500)
    rig.clock.set(EVENING)
    assert await rig.enqueue_reminders() == 500

    counts = await rig.run()

    assert counts == Counter(sent=400, mailbox=100)
    assert len(rig.wecom.shown) == 400
    assert len({shown.user for shown in rig.wecom.shown}) == 400
    assert await wecom_slots(conversation) == 400
    mailed = [r for r in roster if not rig.wecom_texts(r)]
    assert len(mailed) == 100
    for roster_id in mailed[:5]:
        assert len(await mailbox_of(conversation, roster_id)) == 1

    # The cap counts from local midnight: the next day WeCom takes pushes again.
    rig.clock.set(EVENING + dt.timedelta(days=1))
    await push(conversation, mailed[0], "next-day", rig.clock.now())
    assert await rig.run() == Counter(sent=1)
    assert len(rig.wecom_texts(mailed[0])) == 1


# --- the order setting and the reachable rungs ------------------------------------------------


def test_the_order_is_validated_at_start() -> None:
    assert parse_order(DEFAULT_ORDER) == tuple(Rung)
    assert parse_order("qq, WeCom") == (Rung.QQ, Rung.WECOM, Rung.MAILBOX)
    known = "wechat-window, wecom, qq, wechat-template, mailbox"
    for bad, why in [
        ("qq,sms", f"unknown delivery rung 'sms' (known: {known})"),
        ("mailbox,qq", "the mailbox is always the last rung"),
        ("qq,wecom,qq", "a delivery rung is named twice"),
        ("mailbox", "no push rung named"),
    ]:
        with pytest.raises(ConfigError) as refused:
            load_settings(_env_file=None, delivery_order=bad)
        assert str(refused.value) == f"QIYI_DELIVERY_ORDER: {why}"


async def test_reachable_rungs_follow_the_bindings_the_window_and_the_order(
    rig: Rig,
) -> None:
    conversation = rig.conversation
    await bind(conversation, "1001", "wechat", "wecom", "qq")
    mid = await member_id(conversation, "1001")
    now = rig.clock.now()

    async def rungs(settings: Settings) -> list[Rung]:
        async with conversation.sessions() as session:
            bound = await members.bindings_of_member(session, mid)
        return reachable_rungs(settings, bound, now)

    assert await rungs(rig.settings) == [Rung.WECOM, Rung.QQ, Rung.MAILBOX]
    await open_window(conversation, "1001")
    assert await rungs(rig.settings) == [Rung.WECHAT_WINDOW, Rung.WECOM, Rung.QQ, Rung.MAILBOX]
    with_template = rig.settings.model_copy(
        update={"wechat_template_news": "t", "delivery_order": "qq,wechat-template"}
    )
    assert await rungs(with_template) == [Rung.QQ, Rung.WECHAT_TEMPLATE, Rung.MAILBOX]


async def test_a_reservation_grants_what_fits_and_says_when_more_may(
    conversation: Conversation,
) -> None:
    now = conversation.clock.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    limits = wecom_quota.Limits(per_minute=3, per_hour=5, per_day=9)
    async with transaction(conversation.sessions) as session:
        for seconds in (50, 20):  # member 1: 2 in the last minute, 1 free
            session.add(
                Throttle(scope=wecom_quota.SCOPE, key="1", at=now - dt.timedelta(seconds=seconds))
            )
        for minutes in (58, 50, 40, 30, 2):  # member 2: the hour is full until its oldest + 1 h
            session.add(
                Throttle(scope=wecom_quota.SCOPE, key="2", at=now - dt.timedelta(minutes=minutes))
            )
        session.add(Throttle(scope="console-page", key="1", at=now))  # another scope: not counted

    async with transaction(conversation.sessions) as session:
        slots = await wecom_quota.reserve(session, {1: 2, 2: 1, 3: 2}, now, midnight, limits)

    assert {member: len(ids) for member, ids in slots.granted.items()} == {1: 1, 3: 1}
    assert slots.frees_at == {
        1: now + dt.timedelta(minutes=1),  # one of two granted: looked at again in a minute
        2: now + dt.timedelta(minutes=2),  # 58 minutes ago + 1 hour
    }
    assert slots.capped == {3}  # 7 sent today, 9 a day: 1's and one of 3's two
    async with transaction(conversation.sessions) as session:
        await wecom_quota.release(session, slots.granted[3])
    async with conversation.sessions() as session:
        assert await wecom_quota.sent_today(session, midnight) == 8


async def test_a_notice_addressed_to_the_wecom_account_goes_there_only(rig: Rig) -> None:
    conversation = rig.conversation
    await bind(conversation, "1001", "wechat", "wecom", "qq")
    await open_window(conversation, "1001")  # the window would be the ladder's first rung
    await push(conversation, "1001", "bind:7>wecom", rig.clock.now())
    await push(conversation, "1001", "other", rig.clock.now())

    assert await rig.run() == Counter(sent=2)

    assert rig.wecom_texts("1001") == ["通知 bind:7>wecom"]
    [on_wechat] = rig.wechat.sent_texts(openid("1001"))
    assert "通知 other" in on_wechat and "bind:7" not in on_wechat
    assert rig.qq_texts("1001") == []


async def test_a_notice_addressed_to_the_qq_account_goes_there_privately_only(rig: Rig) -> None:
    conversation = rig.conversation
    await bind(conversation, "1001", "wechat", "wecom", "qq")
    await open_window(conversation, "1001")
    await push(conversation, "1001", "bind:7>qq", rig.clock.now())

    assert await rig.run() == Counter(sent=1)

    assert rig.qq_texts("1001") == ["通知 bind:7>qq"]
    assert await attempts_of(conversation, "1001") == [("qq", True)]
    assert rig.wechat.sent_texts(openid("1001")) == []
    assert rig.wecom.calls(MESSAGE_SEND) == []


async def test_a_notice_for_a_qq_account_no_push_reaches_waits_a_day_for_its_message(
    rig: Rig,
) -> None:
    conversation = rig.conversation
    await bind(conversation, "1001", "wechat", "wecom", "qq")
    qq = await binding_of(conversation, "1001", "qq")
    async with transaction(conversation.sessions) as session:
        qq.reachable = False  # the account left QQ's friends: no push reaches it
        session.add(qq)
    queued = await push(conversation, "1001", "bind:7>qq", rig.clock.now())
    await push(conversation, "1001", "n1", rig.clock.now())  # climbs: a WeCom slot for it

    assert await rig.run() == Counter(retry=1, sent=1)

    why = "waits for a message from the qq account"
    item, climbing = await items_of(conversation, "1001")
    assert (item.state, item.last_error, item.attempts) == ("pending", why, 1)
    assert item.due_at == queued.due_at + dt.timedelta(days=1)
    assert climbing.state == "sent"
    assert sorted(await attempt_details(conversation, "1001")) == [
        ("reply", False, why),
        ("wecom", True, "ok"),
    ]
    assert rig.onebot.private_messages() == []
    assert rig.wechat.sent_texts(openid("1001")) == []
    assert rig.wecom_texts("1001") == ["通知 n1"]  # the notice never on another account


@pytest.mark.parametrize(
    ("template", "counts", "attempts", "mailed"),
    [
        ("tmpl-notice", Counter(fallback=1), [("template", True)], 0),
        (None, Counter(mailbox=1), [("mailbox", True)], 1),
    ],
    ids=["template", "no-template"],
)
async def test_a_notice_addressed_to_wechat_out_of_the_window_takes_its_template_or_waits(
    make_rig: RigFactory,
    template: str | None,
    counts: Counter[str],
    attempts: list[tuple[str, bool]],
    mailed: int,
) -> None:
    rig = make_rig(wechat_template_notice=template)
    conversation = rig.conversation
    await bind(conversation, "1001", "wechat", "wecom")  # WeCom reachable, but not addressed
    await push(conversation, "1001", "bind:7>wechat", rig.clock.now())

    assert await rig.run() == counts

    assert await attempts_of(conversation, "1001") == attempts
    if mailed:  # the rung's reason goes with it
        [(_, _, why)] = await attempt_details(conversation, "1001")
        assert why == "outside the window, no template configured"
    sent = [body["touser"] for body in rig.wechat.templates_sent]
    assert sent == ([openid("1001")] if template else [])
    assert len(await mailbox_of(conversation, "1001")) == mailed
    assert rig.wecom.calls(MESSAGE_SEND) == []


async def test_a_notice_addressed_to_an_unfollowed_wechat_account_is_skipped_not_mailed(
    make_rig: RigFactory,
) -> None:
    rig = make_rig(wechat_template_notice="tmpl-notice")
    conversation = rig.conversation
    await bind(conversation, "1001", "wechat", "wecom")
    await open_window(conversation, "1001")
    rig.wechat.not_following(openid("1001"))
    await push(conversation, "1001", "bind:7>wechat", rig.clock.now())

    assert await rig.run() == Counter(skipped=1)

    [item] = await items_of(conversation, "1001")
    assert (item.state, item.last_error[:5]) == ("skipped", "43004")
    assert await attempts_of(conversation, "1001") == [("custom", False)]  # no template tried
    assert rig.wechat.templates_sent == []
    assert await mailbox_of(conversation, "1001") == []
    assert rig.wecom.calls(MESSAGE_SEND) == []


# --- the ladder's pure parts ---------------------------------------------------------------


def wechat_binding(now: dt.datetime, *, hours_left: float, used: int, budget: int = 5) -> Binding:
    return Binding(
        channel="wechat",
        external_id=openid("1001"),
        member_id=1,
        bound_at=now,
        window_until=now + dt.timedelta(hours=hours_left),
        window_budget=budget,
        window_used=used,
    )


def test_the_window_is_open_before_its_end_while_budget_is_left() -> None:
    now = EVENING
    assert window_open(wechat_binding(now, hours_left=1, used=4), now)
    assert not window_open(wechat_binding(now, hours_left=0, used=0), now)  # ends now
    assert not window_open(wechat_binding(now, hours_left=-1, used=0), now)
    assert not window_open(wechat_binding(now, hours_left=1, used=5), now)  # budget spent
    never_opened = wechat_binding(now, hours_left=1, used=0)
    never_opened.window_until = None
    assert not window_open(never_opened, now)


def test_a_rung_is_reachable_with_both_its_binding_and_its_api(database_url: str) -> None:
    now = EVENING
    every_api = {
        "wechat_appid": "wx-app",
        "wechat_secret": "wx-secret",
        "wecom_corp_id": "corp",
        "wecom_agent_id": 1000002,
        "wecom_secret": "wecom-secret",
        "onebot_api_url": "http://127.0.0.1:5700",
    }
    wechat = wechat_binding(now, hours_left=1, used=0)
    qq = Binding(channel="qq", external_id="10001", member_id=1, bound_at=now)
    wecom = Binding(channel="wecom", external_id=userid("1001"), member_id=1, bound_at=now)
    gone = Binding(channel="qq", external_id="10001", member_id=1, bound_at=now, reachable=False)

    def rungs(bindings: list[Binding], **overrides: object) -> list[Rung]:
        settings = make_settings(database_url, **{**every_api, **overrides})
        return reachable_rungs(settings, bindings, now)

    everything = [Rung.WECHAT_WINDOW, Rung.WECOM, Rung.QQ, Rung.MAILBOX]
    assert rungs([wechat, wecom, qq]) == everything
    assert rungs([]) == [Rung.MAILBOX]  # every API, no binding
    assert rungs([gone]) == [Rung.MAILBOX]
    assert rungs([wechat], wechat_secret=None) == [Rung.MAILBOX]
    assert rungs([wechat], wechat_appid=None) == [Rung.MAILBOX]
    assert rungs([wecom], wecom_secret=None) == [Rung.MAILBOX]
    assert rungs([qq], onebot_api_url=None) == [Rung.MAILBOX]
    assert rungs([wechat], wechat_template_reminder="t") == [
        Rung.WECHAT_WINDOW,
        Rung.WECHAT_TEMPLATE,
        Rung.MAILBOX,
    ]


def test_the_reachable_rungs_read_as_people_name_them() -> None:
    assert (
        rung_names([Rung.WECHAT_WINDOW, Rung.WECOM, Rung.MAILBOX]) == "微信窗口、企业微信、留言箱"
    )
    assert rung_names([Rung.MAILBOX]) == "留言箱"


# --- the branches' QQ groups ------------------------------------------------------------------


async def post_to_groups(rig: Rig, *posts: tuple[str, str, str]) -> None:
    """Queue group posts, `(group id, reference, picture)`, due a second apart in that order."""
    now = rig.clock.now()
    rows = [
        groups.Post(
            "qq",
            group_id,
            "news",
            ref,
            today(rig.clock),
            f"资讯 {ref}",
            now + dt.timedelta(seconds=n),
            image,
        )
        for n, (group_id, ref, image) in enumerate(posts)
    ]
    async with transaction(rig.conversation.sessions) as session:
        assert await groups.enqueue(session, rows, now) == len(rows)
    rig.clock.advance(seconds=len(rows))


async def group_posts(conversation: Conversation) -> dict[str, GroupPost]:
    async with conversation.sessions() as session:
        return {post.group_id: post for post in await session.exec(select(GroupPost))}


async def test_each_group_post_is_sent_retried_or_failed_by_its_answer(rig: Rig) -> None:
    rig.onebot.fail_next(SEND_GROUP, 120, "发送群消息失败")  # the first post's call
    await post_to_groups(
        rig,
        ("654321", "article:1", ""),  # refused for now: retried after the backoff
        ("²", "article:2", ""),  # stored before group ids were checked
        ("654323", "article:3", "/nonexistent/chart.png"),  # its picture is gone
        ("654324", "article:4", ""),
    )
    now = rig.clock.now()

    assert await rig.run() == Counter(sent=1, retry=1, failed=2)

    posts = await group_posts(rig.conversation)
    [posted] = rig.onebot.group_messages()
    assert (posted.target, posted.message[0]["data"]["text"]) == (654324, "资讯 article:4")
    assert (posts["654324"].state, posts["654324"].done_at) == ("sent", now)
    retried = posts["654321"]
    assert (retried.state, retried.attempts, retried.lease_until) == ("pending", 1, None)
    assert retried.last_error == "120 发送群消息失败"
    assert now + dt.timedelta(seconds=15) <= retried.due_at <= now + dt.timedelta(seconds=45)
    bad = posts["²"]
    assert (bad.state, bad.done_at, bad.lease_until) == ("failed", now, None)
    assert bad.last_error == "not a QQ group number: '²'"
    assert posts["654323"].state == "failed"
    assert posts["654323"].last_error.startswith("FileNotFoundError")
    assert len(rig.onebot.calls(SEND_GROUP)) == 2  # no call for the bad group id

    rig.clock.set(retried.due_at)
    assert await rig.run() == Counter(sent=1)
    assert [sent.target for sent in rig.onebot.group_messages()] == [654324, 654321]
    assert (await group_posts(rig.conversation))["654321"].state == "sent"


# --- the serving loop -------------------------------------------------------------------------


async def test_the_serving_loop_goes_on_after_a_failed_round_until_told_to_stop(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    await bind(rig.conversation, "1001", "wecom")
    await push(rig.conversation, "1001", "first", rig.clock.now())
    stop = asyncio.Event()
    rounds: list[Counter[str]] = []
    one_round = rig.dispatcher.run_once

    async def counted_round() -> Counter[str]:
        if not rounds:
            rounds.append(Counter())
            raise RuntimeError("the database went away")
        rounds.append(await one_round())
        if len(rounds) == 3:
            stop.set()
        return rounds[-1]

    monkeypatch.setattr(rig.dispatcher, "run_once", counted_round)

    # No pause between rounds; a loop that waited for `stop` alone would hang here.
    await asyncio.wait_for(rig.dispatcher.run_forever(stop, idle_seconds=0), timeout=60)

    assert rounds == [Counter(), Counter(sent=1), Counter()]
    assert len(rig.wecom_texts("1001")) == 1


# --- the WeCom rung's messages and answers ----------------------------------------------------


async def push_article(
    rig: Rig,
    roster_id: str,
    article: Article,
    text: str | None = None,
    kind: PushKind = PushKind.LESSON,
) -> OutboxItem:
    """A lone push of a new lesson (or `kind`) about `article`, due now."""
    mid = await member_id(rig.conversation, roster_id)
    now = rig.clock.now()
    text = text or f"新课：{article.title}\n{article.summary}"
    row = Push(mid, kind, f"article:{article.id}", today(rig.clock), text, text, now)
    async with transaction(rig.conversation.sessions) as session:
        assert await outbox.enqueue(session, [row], now) == 1
    async with rig.conversation.sessions() as session:
        return (await session.exec(select(OutboxItem).where(OutboxItem.key == row.key))).one()


async def add_lesson(rig: Rig, title: str, url: str) -> Article:
    async with transaction(rig.conversation.sessions) as session:
        article = Article(
            slug=f"lesson-{len(title)}-{len(url)}",
            kind="lesson",
            title=title,
            summary="摘要" * 250,  # the longest kept (500 characters): beyond a card's description
            body="正文",
            url=url,
            publish_at=rig.clock.now(),
        )
        session.add(article)
    return article


async def test_a_lone_article_push_with_a_link_is_a_text_card_cut_to_wecoms_limits(
    rig: Rig,
) -> None:
    await bind(rig.conversation, "1001", "wecom")
    await bind(rig.conversation, "1002", "wecom")
    title = "学习贯彻" * 20  # 240 bytes: beyond a card's title
    lesson = await add_lesson(rig, title, "https://party.example.org/lessons/1")
    bare = await add_lesson(rig, "没有链接的一课", "")
    item = await push_article(rig, "1001", lesson)
    long_text = f"新课：没有链接的一课\n{'摘要' * 400}"  # 2,431 bytes: beyond WeCom's 2,048
    await push_article(rig, "1002", bare, long_text)

    assert await rig.run() == Counter(sent=2)

    [card] = [shown for shown in rig.wecom.shown if shown.user == userid("1001")]
    assert card.msgtype == "textcard"
    assert card.content["title"] == cut_to_fit(title, 128)
    assert card.content["description"] == cut_to_fit(item.brief, 512)
    assert card.content["url"] == "https://party.example.org/lessons/1"
    # A card keys the duplicate check to its row like a text: back to its creation, no further.
    intervals = {
        call.body["msgtype"]: call.body["duplicate_check_interval"]
        for call in rig.wecom.calls(MESSAGE_SEND)
    }
    assert intervals == {"textcard": 60, "text": 60}
    [text] = [shown for shown in rig.wecom.shown if shown.user == userid("1002")]
    assert text.msgtype == "text"
    assert text.content["content"] == cut_to_fit(long_text, 2048)


async def test_the_duplicate_check_reaches_back_four_hours_at_most(rig: Rig) -> None:
    await bind(rig.conversation, "1001", "wecom")
    await push(rig.conversation, "1001", "late", rig.clock.now() + dt.timedelta(hours=5))
    rig.clock.advance(hours=5)

    assert await rig.run() == Counter(sent=1)

    [call] = rig.wecom.calls(MESSAGE_SEND)
    assert call.body["duplicate_check_interval"] == 4 * 3600


async def test_a_busy_wecom_token_is_retried_on_wecom_not_passed_on(rig: Rig) -> None:
    """gettoken's -1 (system busy) passes: the push waits for WeCom, not the next rung."""
    conversation = rig.conversation
    await bind(conversation, "1001", "wecom", "qq")
    await push(conversation, "1001", "n1", rig.clock.now())
    rig.wecom.fail_next(GETTOKEN, -1)

    assert await rig.run() == Counter(retry=1)

    assert rig.qq_texts("1001") == []
    [item] = await items_of(conversation, "1001")
    assert (item.state, item.attempts, item.last_error) == ("pending", 1, "-1 system busy")
    async with conversation.sessions() as session:
        answered = list(await session.exec(select(DeliveryAttempt.errcode)))
    assert answered == [-1]  # the platform's answer is recorded with the attempt
    assert await wecom_slots(conversation) == 0  # nothing was shown
    rig.clock.advance(seconds=46)  # the backoff is 30 s ± 50%
    assert await rig.run() == Counter(sent=1)
    assert rig.wecom_texts("1001") == ["通知 n1"]


@pytest.mark.parametrize(
    ("errcode", "counts", "qq"),
    [
        (45009, Counter(retry=1), 0),  # the API's frequency limit: WeCom again later
        (45033, Counter(retry=1), 0),  # its concurrency limit, alike
        (40008, Counter(sent=1), 1),  # refused for another reason: the next rung now
    ],
    ids=["frequency", "concurrency", "refused"],
)
async def test_a_wecom_refusal_retries_or_goes_to_the_next_rung_and_frees_its_slot(
    rig: Rig, errcode: int, counts: Counter[str], qq: int
) -> None:
    conversation = rig.conversation
    await bind(conversation, "1001", "wecom", "qq")
    await push(conversation, "1001", "n1", rig.clock.now())
    rig.wecom.fail_next(MESSAGE_SEND, errcode)

    assert await rig.run() == counts

    assert len(rig.qq_texts("1001")) == qq
    assert await wecom_slots(conversation) == 0  # WeCom showed nothing
    assert (await binding_of(conversation, "1001", "wecom")).reachable
    [item] = await items_of(conversation, "1001")
    assert item.last_error.startswith(f"{errcode} ") == (qq == 0)
    details = await attempt_details(conversation, "1001")
    assert details[0] == ("wecom", False, ERRMSGS.get(errcode, "error"))


async def test_a_wecom_refusal_reaches_the_mailbox_with_its_reason(rig: Rig) -> None:
    await bind(rig.conversation, "1001", "wecom")
    await push(rig.conversation, "1001", "n1", rig.clock.now())
    rig.wecom.fail_next(MESSAGE_SEND, 40008)

    assert await rig.run() == Counter(mailbox=1)

    assert await attempt_details(rig.conversation, "1001") == [
        ("wecom", False, "invalid message type"),
        ("mailbox", True, "40008 invalid message type"),
    ]


async def test_an_unexpected_failure_of_one_wecom_send_keeps_wecom_for_the_next(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation = rig.conversation
    await bind(conversation, "1001", "wecom", "qq")
    await push(conversation, "1001", "bind:7>wecom", rig.clock.now())
    await push(conversation, "1001", "n1", rig.clock.now())
    assert rig.dispatcher.wecom is not None
    api = rig.dispatcher.wecom.api
    send_text = api.send_text
    failures = iter([RuntimeError("a bug in the first send")])

    async def failing_once(*args: Any, **kwargs: Any) -> Any:
        if (failure := next(failures, None)) is not None:
            raise failure
        return await send_text(*args, **kwargs)

    monkeypatch.setattr(api, "send_text", failing_once)

    assert await rig.run() == Counter(retry=1, sent=1)

    notice, climbing = await items_of(conversation, "1001")
    assert (notice.state, notice.last_error) == (
        "pending",
        "waits for a message from the wecom account",
    )
    [failed, *_] = await attempt_details(conversation, "1001")
    assert failed == ("wecom", False, "RuntimeError: a bug in the first send")
    assert climbing.state == "sent"
    assert rig.wecom_texts("1001") == ["通知 n1"]  # WeCom still served the climb
    assert rig.qq_texts("1001") == []


async def test_a_refused_wecom_token_sends_the_round_to_the_next_rung_asking_once(
    rig: Rig,
) -> None:
    conversation = rig.conversation
    await bind(conversation, "1001", "wecom", "qq")
    await push(conversation, "1001", "bind:7>wecom", rig.clock.now())  # its own slot
    await push(conversation, "1001", "n1", rig.clock.now())
    rig.wecom.fail_next(GETTOKEN, 40001, times=10)

    counts = await rig.run()

    assert rig.wecom.calls(MESSAGE_SEND) == []
    assert len(rig.wecom.calls(GETTOKEN)) == 1  # not asked again for the climb
    assert counts == Counter(sent=1, retry=1)
    assert rig.qq_texts("1001") == ["通知 n1"]  # the next rung, in the same round
    assert await wecom_slots(conversation) == 0
    assert (await binding_of(conversation, "1001", "wecom")).reachable
    notice, climbing = await items_of(conversation, "1001")
    assert notice.last_error == "waits for a message from the wecom account"
    assert (climbing.state, climbing.last_error) == ("sent", "")
    assert sorted(await attempts_of(conversation, "1001")) == [
        ("qq", True),
        ("reply", False),
        ("wecom", False),
    ]


async def test_with_wecoms_token_refused_the_mailbox_says_why(rig: Rig) -> None:
    await bind(rig.conversation, "1001", "wecom")
    await push(rig.conversation, "1001", "n1", rig.clock.now())
    rig.wecom.fail_next(GETTOKEN, 40001, times=10)

    assert await rig.run() == Counter(mailbox=1)

    why = "TokenRefused: WeCom API error 40001: invalid secret"
    assert await attempt_details(rig.conversation, "1001") == [
        ("wecom", False, why),
        ("mailbox", True, why),
    ]


async def test_a_bundle_only_of_notices_for_another_account_takes_no_wecom_slot(
    make_rig: RigFactory,
) -> None:
    """Its member is on WeCom, but nothing of the bundle may climb there: the last slot of
    the day goes to the member who needs it, in the same claim."""
    rig = make_rig(wecom_daily_cap=1)
    conversation = rig.conversation
    await bind(conversation, "1001", "wecom", "qq")
    await bind(conversation, "1002", "wecom")
    await push(conversation, "1001", "bind:7>qq", rig.clock.now())
    await push(conversation, "1002", "n1", rig.clock.now())

    assert await rig.run() == Counter(sent=2)

    assert rig.qq_texts("1001") == ["通知 bind:7>qq"]
    assert rig.wecom_texts("1001") == []
    assert rig.wecom_texts("1002") == ["通知 n1"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ((0, 0, 0, 0), (0, 0, 0, 500_000)),
        ((0, 0, 0, 200_000), (0, 0, 1, 500_000)),
        ((0, 0, 30, 0), (0, 1, 30, 0)),
        ((0, 30, 0, 0), (1, 10, 0, 0)),
        ((7, 30, 0, 0), (8, 30, 0, 0)),  # midnight UTC falls between them
    ],
    ids=["first-microsecond", "first-second", "first-minute", "first-hour", "utc-midnight"],
)
async def test_wecoms_daily_cap_counts_from_local_midnight(
    make_rig: RigFactory, first: tuple[int, ...], second: tuple[int, ...]
) -> None:
    """The app's daily cap is a day of the configured zone (Asia/Shanghai), from 00:00:00.0."""
    rig = make_rig(wecom_daily_cap=1, delivery_concurrency=1)
    conversation = rig.conversation
    await bind(conversation, "1001", "wecom")
    await bind(conversation, "1002", "wecom")
    rig.clock.set(dt.datetime(2026, 11, 26, *first, tzinfo=SHANGHAI))
    await push(conversation, "1001", "n1", rig.clock.now())
    assert await rig.run() == Counter(sent=1)

    rig.clock.set(dt.datetime(2026, 11, 26, *second, tzinfo=SHANGHAI))
    await push(conversation, "1002", "n2", rig.clock.now())

    assert await rig.run() == Counter(mailbox=1)  # the same day: the cap is reached
    assert rig.wecom_texts("1002") == []


async def test_wecoms_daily_cap_starts_again_at_local_midnight(make_rig: RigFactory) -> None:
    rig = make_rig(wecom_daily_cap=1, delivery_concurrency=1)
    conversation = rig.conversation
    await bind(conversation, "1001", "wecom")
    await bind(conversation, "1002", "wecom")
    rig.clock.set(dt.datetime(2026, 11, 26, 23, 50, tzinfo=SHANGHAI))
    await push(conversation, "1001", "n1", rig.clock.now())
    assert await rig.run() == Counter(sent=1)

    rig.clock.set(dt.datetime(2026, 11, 27, 0, 10, tzinfo=SHANGHAI))
    await push(conversation, "1002", "n2", rig.clock.now())

    assert await rig.run() == Counter(sent=1)
    assert rig.wecom_texts("1002") == ["通知 n2"]


async def test_past_wecoms_daily_cap_the_mailbox_says_why(make_rig: RigFactory) -> None:
    rig = make_rig(wecom_daily_cap=1, delivery_concurrency=1)
    conversation = rig.conversation
    await bind(conversation, "1001", "wecom")
    await bind(conversation, "1002", "wecom")
    await push(conversation, "1001", "n1", rig.clock.now())
    await push(conversation, "1002", "n1", rig.clock.now())

    assert await rig.run() == Counter(sent=1, mailbox=1)

    [capped] = [r for r in ("1001", "1002") if not rig.wecom_texts(r)]
    assert await attempt_details(conversation, capped) == [
        ("mailbox", True, "WeCom's daily cap reached")
    ]


# --- the QQ rung -------------------------------------------------------------------------------


async def test_a_lesson_is_left_to_the_branchs_qq_group_while_a_notice_goes_privately(
    rig: Rig,
) -> None:
    conversation = rig.conversation
    await bind(conversation, "1001", "qq")  # 第一党支部
    async with transaction(conversation.sessions) as session:
        operator = Actor(Door.CLI, "cli:test@host", "host")
        await groups.set_group(session, "第一党支部", "qq", "123456", operator, rig.clock.now())
    lesson = await push(conversation, "1001", "l1", rig.clock.now(), PushKind.LESSON)
    notice = await push(conversation, "1001", "n1", rig.clock.now())

    assert await rig.run() == Counter(skipped=1, sent=1)

    assert rig.qq_texts("1001") == ["通知 n1"]  # alone: its own text, not a digest
    states = {
        item.id: (item.state, item.last_error) for item in await items_of(conversation, "1001")
    }
    assert states == {lesson.id: ("skipped", "posted in the branch group"), notice.id: ("sent", "")}
    group, private = await attempt_rows(conversation, "1001")
    assert group == (lesson.id, "qq-group", True, None, "posted in the branch group")
    assert private[:4] == (notice.id, "qq", True, 0)


async def test_several_items_go_to_qq_as_one_digest(rig: Rig) -> None:
    conversation = rig.conversation
    await bind(conversation, "1001", "qq")
    await push(conversation, "1001", "n1", rig.clock.now())
    await push(conversation, "1001", "n2", rig.clock.now())

    assert await rig.run() == Counter(sent=2)

    [digest] = rig.qq_texts("1001")
    assert "通知 n1" in digest and "通知 n2" in digest


async def test_a_refused_qq_send_records_its_retcode_and_is_retried(rig: Rig) -> None:
    conversation = rig.conversation
    await bind(conversation, "1001", "qq")
    item = await push(conversation, "1001", "n1", rig.clock.now())
    rig.onebot.fail_next(SEND_PRIVATE, 1200, "风控")

    assert await rig.run() == Counter(retry=1)

    assert await attempt_rows(conversation, "1001") == [(item.id, "qq", False, 1200, "风控")]
    [waiting] = await items_of(conversation, "1001")
    assert (waiting.state, waiting.attempts, waiting.last_error) == ("pending", 1, "1200 风控")


async def test_a_qq_account_that_cannot_be_messaged_passes_the_item_on_saying_why(
    rig: Rig,
) -> None:
    conversation = rig.conversation
    await bind(conversation, "1001", "qq")
    await push(conversation, "1001", "n1", rig.clock.now())
    rig.onebot.fail_next(SEND_PRIVATE, 1400, "不是好友")

    assert await rig.run() == Counter(mailbox=1)

    assert await attempt_details(conversation, "1001") == [
        ("qq", False, "不是好友"),
        ("mailbox", True, "1400 不是好友"),
    ]


async def test_a_bug_in_a_rung_fails_the_bundles_items_saying_what(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation = rig.conversation
    await bind(conversation, "1001", "qq")
    await push(conversation, "1001", "n1", rig.clock.now())

    async def broken(*args: object) -> list[OutboxItem]:
        raise RuntimeError("a bug in the QQ rung")

    monkeypatch.setattr(rig.dispatcher, "_qq_rung", broken)

    assert await rig.run() == Counter(failed=1)

    assert await attempt_details(conversation, "1001") == [
        ("dispatch", False, "RuntimeError: a bug in the QQ rung")
    ]


async def test_an_alert_waits_in_the_admins_mailbox(rig: Rig) -> None:
    await bind(rig.conversation, "1001", "qq")  # reachable, yet alerts are not pushed
    await push(rig.conversation, "1001", "a1", rig.clock.now(), PushKind.ALERT)

    assert await rig.run() == Counter(mailbox=1)

    assert rig.qq_texts("1001") == []
    assert await attempt_details(rig.conversation, "1001") == [
        ("mailbox", True, "alerts wait for the admin's next message")
    ]


async def test_a_qq_send_that_raises_records_an_attempt_for_each_item_and_retries_them(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation = rig.conversation
    await bind(conversation, "1001", "qq")
    first = await push(conversation, "1001", "n1", rig.clock.now())
    second = await push(conversation, "1001", "n2", rig.clock.now())

    async def unreachable(*args: object, **kwargs: object) -> None:
        raise aiohttp.ClientConnectionError("connection refused")

    assert rig.dispatcher.onebot is not None
    monkeypatch.setattr(rig.dispatcher.onebot, "send_private", unreachable)

    assert await rig.run() == Counter(retry=2)

    assert await attempt_rows(conversation, "1001") == [
        (first.id, "qq", False, None, "connection refused"),
        (second.id, "qq", False, None, "connection refused"),
    ]
    assert [i.state for i in await items_of(conversation, "1001")] == ["pending", "pending"]


async def test_the_mailbox_says_why_no_rung_took_the_item(rig: Rig) -> None:
    conversation = rig.conversation
    async with transaction(conversation.sessions) as session:  # 1002: the official QQ bot only
        member = await members.member_by_roster_id(session, "1002")
        assert member is not None
        await members.bind(session, Sender("qqbot", "openid-1002"), member, rig.clock.now())
    await push(conversation, "1001", "n1", rig.clock.now())  # 1001: no account at all
    await push(conversation, "1002", "n2", rig.clock.now())

    assert await rig.run() == Counter(mailbox=2)

    assert await attempt_details(conversation, "1001") == [("mailbox", True, "no account")]
    assert await attempt_details(conversation, "1002") == [
        ("mailbox", True, "no push reaches the member now")
    ]


async def test_a_claim_takes_at_most_a_batch_of_members(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each claim (one transaction, one lease) holds BATCH_MEMBERS members' items at most; the
    round claims again until nothing is due."""
    monkeypatch.setattr(dispatcher_module, "BATCH_MEMBERS", 2)
    for roster_id in ("1001", "1002", "1003"):
        await bind(rig.conversation, roster_id, "qq")
        await push(rig.conversation, roster_id, "n1", rig.clock.now())
    claimed: list[int] = []

    assert await rig.dispatcher.run_once(progress=claimed.append) == Counter(sent=3)

    assert claimed == [2, 1]


async def test_without_wechat_or_wecom_configured_their_bindings_are_passed_by(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    """A server with only OneBot configured: a member bound on WeChat (window open) and WeCom
    too gets the push on QQ, and nothing is tried on the unconfigured platforms."""
    conversation = rig.conversation
    await bind(conversation, "1001", "wechat", "wecom", "qq")
    await open_window(conversation, "1001")
    await push(conversation, "1001", "n1", rig.clock.now())
    settings = rig.settings
    qq_only = Dispatcher(
        settings, rig.clock, conversation.sessions, None, onebot=OneBotApi(http, settings)
    )

    assert await qq_only.run_once() == Counter(sent=1)

    assert rig.qq_texts("1001") == ["通知 n1"]
    assert await attempts_of(conversation, "1001") == [("qq", True)]


# --- a dispatcher that lost its lease ---------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "limiter"),
    [("wecom", "wecom_limiter"), ("qq", "limiter"), ("wechat", "limiter")],
)
async def test_a_push_another_dispatcher_took_over_while_this_one_waited_goes_once(
    rig: Rig,
    make_rig: RigFactory,
    monkeypatch: pytest.MonkeyPatch,
    channel: str,
    limiter: str,
) -> None:
    conversation = rig.conversation
    await bind(conversation, "1001", channel)
    if channel == "wechat":
        await open_window(conversation, "1001")
    await push(conversation, "1001", "n1", rig.clock.now())
    other = make_rig().dispatcher  # a second process on the same database
    paced = getattr(rig.dispatcher, limiter)
    turn = paced.acquire

    async def slow_turn() -> None:
        # This dispatcher waits for its turn past its lease; the other claims and sends.
        monkeypatch.setattr(paced, "acquire", turn)
        rig.clock.advance(seconds=rig.settings.delivery_lease_seconds + 1)
        assert await other.run_once() == Counter(sent=1)
        await turn()

    monkeypatch.setattr(paced, "acquire", slow_turn)

    assert await rig.run() == Counter()

    shown = {
        "wecom": len(rig.wecom.calls(MESSAGE_SEND)),
        "qq": len(rig.onebot.calls(SEND_PRIVATE)),
        "wechat": len(rig.wechat.calls(CUSTOM_SEND)),
    }
    assert shown[channel] == 1
    [item] = await items_of(conversation, "1001")
    assert (item.state, item.lease_until) == ("sent", None)
    assert len(await attempts_of(conversation, "1001")) == 1


async def test_the_items_still_held_go_back_untried_when_another_dispatcher_took_one(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation = rig.conversation
    await bind(conversation, "1001", "qq")
    taken = await push(conversation, "1001", "bind:7>qq", rig.clock.now())  # sent first, alone
    held = await push(conversation, "1001", "n1", rig.clock.now())
    theirs = rig.clock.now() + dt.timedelta(hours=1)
    paced = rig.dispatcher.limiter
    turn = paced.acquire

    async def slow_turn() -> None:
        # While this dispatcher waits for its turn, another one claims `taken` alone.
        monkeypatch.setattr(paced, "acquire", turn)
        async with transaction(conversation.sessions) as session:
            statement = update(OutboxItem).where(col(OutboxItem.id) == taken.id)
            await session.exec(statement.values(lease_until=theirs))  # type: ignore[call-overload]
        rig.clock.advance(seconds=rig.settings.delivery_lease_seconds)  # renewed at the guard
        await turn()

    monkeypatch.setattr(paced, "acquire", slow_turn)

    # `held` went back to pending untried, and the round's next claim sent it.
    assert await rig.run() == Counter(sent=1)

    assert rig.qq_texts("1001") == ["通知 n1"]
    items = {item.id: item for item in await items_of(conversation, "1001")}
    assert (items[taken.id].state, items[taken.id].lease_until) == ("sending", theirs)
    assert items[held.id].state == "sent"
    assert await attempts_of(conversation, "1001") == [("qq", True)]


# --- the WeChat window rung --------------------------------------------------------------------


async def test_a_news_card_needs_no_media_store_and_describes_with_the_text_after_its_title(
    make_rig: RigFactory,
) -> None:
    rig = make_rig(public_url="https://party.example.org")  # and no media store
    conversation = rig.conversation
    lesson = await add_lesson(rig, "封面课", "https://party.example.org/lessons/1")
    async with transaction(conversation.sessions) as session:
        lesson.cover, lesson.cover_mime = "ab" * 32, "image/png"
        lesson.summary = "摘要一句话"
        session.add(lesson)
    texts = {"1001": "【今日微党课】封面 课", "1002": "【今日微党课】封面 课\n 第二行\n第三行 "}
    for roster_id, text in texts.items():
        await bind(conversation, roster_id, "wechat")
        await open_window(conversation, roster_id)
        await push_article(rig, roster_id, lesson, text)

    assert await rig.run() == Counter(sent=2)

    one_line, three_lines = (rig.wechat.sent_news(openid(r)) for r in ("1001", "1002"))
    assert [card["description"] for card in one_line] == ["摘要一句话"]  # no line to take
    assert [card["description"] for card in three_lines] == ["第二行\n第三行"]
    assert {card["title"] for card in one_line + three_lines} == {"封面课"}
    assert rig.wechat.sent_texts() == []
    assert await attempts_of(conversation, "1001") == [("news", True)]


async def test_the_window_ends_at_its_end_and_what_it_leaves_waits_with_the_reason(
    make_rig: RigFactory,
) -> None:
    rig = make_rig(delivery_order="wechat-window")  # the window's own reason reaches the mailbox
    conversation = rig.conversation
    await bind(conversation, "1001", "wechat")
    now = rig.clock.now()
    binding = await binding_of(conversation, "1001", "wechat")
    async with transaction(conversation.sessions) as session:
        binding.window_until, binding.window_budget = now, 5  # it ends now
        session.add(binding)
    await push(conversation, "1001", "n1", now)

    assert await rig.run() == Counter(mailbox=1)

    assert rig.wechat.calls(CUSTOM_SEND) == []
    assert await attempt_details(conversation, "1001") == [("mailbox", True, "outside the window")]


async def test_no_template_goes_to_an_account_already_known_unfollowed(
    make_rig: RigFactory,
) -> None:
    rig = make_rig(wechat_template_notice="tmpl-notice")
    conversation = rig.conversation
    await bind(conversation, "1001", "wechat", "qq")
    binding = await binding_of(conversation, "1001", "wechat")
    async with transaction(conversation.sessions) as session:
        binding.reachable = False  # unfollowed in an earlier round
        session.add(binding)
    await push(conversation, "1001", "n1", rig.clock.now())
    rig.onebot.fail_next(SEND_PRIVATE, 1400, "无法获取用户信息")  # not a friend on QQ either

    assert await rig.run() == Counter(mailbox=1)

    assert rig.wechat.calls(TEMPLATE_SEND) == []
    assert await attempts_of(conversation, "1001") == [("qq", False), ("mailbox", True)]


async def test_a_member_every_account_of_whom_is_lost_is_skipped_as_not_following(
    rig: Rig,
) -> None:
    conversation = rig.conversation
    await bind(conversation, "1001", "wechat")
    binding = await binding_of(conversation, "1001", "wechat")
    async with transaction(conversation.sessions) as session:
        binding.reachable = False  # unfollowed in an earlier round, no other account
        session.add(binding)
    await push(conversation, "1001", "n1", rig.clock.now())

    assert await rig.run() == Counter(skipped=1)

    assert rig.wechat.calls(CUSTOM_SEND) == rig.wechat.calls(TEMPLATE_SEND) == []
    assert await attempt_details(conversation, "1001") == [("none", False, "not following")]
    [item] = await items_of(conversation, "1001")
    assert (item.state, item.last_error) == ("skipped", "not following")


async def test_a_group_post_another_dispatcher_took_over_while_this_one_waited_goes_once(
    rig: Rig, make_rig: RigFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    await post_to_groups(rig, ("654321", "article:1", ""))
    other = make_rig().dispatcher  # a second process on the same database
    turn = rig.dispatcher.limiter.acquire

    async def slow_turn() -> None:
        monkeypatch.setattr(rig.dispatcher.limiter, "acquire", turn)
        rig.clock.advance(seconds=rig.settings.delivery_lease_seconds + 1)
        assert await other.run_once() == Counter(sent=1)
        await turn()

    monkeypatch.setattr(rig.dispatcher.limiter, "acquire", slow_turn)

    assert await rig.run() == Counter()

    assert len(rig.onebot.calls(SEND_GROUP)) == 1
    post = (await group_posts(rig.conversation))["654321"]
    assert (post.state, post.lease_until, post.attempts) == ("sent", None, 0)


async def test_a_group_post_waiting_past_half_its_lease_renews_it_and_goes(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    await post_to_groups(rig, ("654321", "article:1", ""))
    turn = rig.dispatcher.limiter.acquire

    async def slow_turn() -> None:
        monkeypatch.setattr(rig.dispatcher.limiter, "acquire", turn)
        rig.clock.advance(seconds=rig.settings.delivery_lease_seconds * 0.75)
        await turn()

    monkeypatch.setattr(rig.dispatcher.limiter, "acquire", slow_turn)

    assert await rig.run() == Counter(sent=1)

    post = (await group_posts(rig.conversation))["654321"]
    assert (post.state, post.lease_until) == ("sent", None)


async def test_a_group_post_taken_over_during_its_send_is_not_counted_by_this_dispatcher(
    rig: Rig, make_rig: RigFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The send outlived the lease and another dispatcher claimed the post meanwhile: the row
    is the other's to settle, and this round counts nothing for it."""
    await post_to_groups(rig, ("654321", "article:1", ""))
    other = make_rig().dispatcher
    assert rig.dispatcher.onebot is not None
    send = rig.dispatcher.onebot.send_group

    async def slow_send(*args: Any, **kwargs: Any) -> Any:
        answer = await send(*args, **kwargs)
        rig.clock.advance(seconds=rig.settings.delivery_lease_seconds + 1)
        assert await other.run_once() == Counter(sent=1)
        return answer

    monkeypatch.setattr(rig.dispatcher.onebot, "send_group", slow_send)

    assert await rig.run() == Counter()

    post = (await group_posts(rig.conversation))["654321"]
    assert (post.state, post.lease_until) == ("sent", None)


async def test_two_pushes_go_to_wecom_as_one_digest_of_both(rig: Rig) -> None:
    await bind(rig.conversation, "1001", "wecom")
    await push(rig.conversation, "1001", "n1", rig.clock.now())
    await push(rig.conversation, "1001", "n2", rig.clock.now())

    assert await rig.run() == Counter(sent=2)

    [digest] = rig.wecom_texts("1001")
    assert "通知 n1" in digest and "通知 n2" in digest


async def test_a_video_push_without_a_media_store_goes_as_its_text(rig: Rig) -> None:
    await bind(rig.conversation, "1001", "wechat")
    await open_window(rig.conversation, "1001")
    video = await add_lesson(rig, "家书", "https://party.example.org/v/1")
    async with transaction(rig.conversation.sessions) as session:
        video.kind, video.video = "video", "ab" * 32  # uploaded, but no store to send it from
        session.add(video)
    await push_article(rig, "1001", video, "【微视频】家书\n观看：链接", PushKind.VIDEO)

    assert await rig.run() == Counter(sent=1)

    assert rig.wechat.sent_texts(openid("1001")) == ["【微视频】家书\n观看：链接"]
    assert rig.wechat.uploads == [] and rig.wechat.sent_videos() == []
    assert await attempts_of(rig.conversation, "1001") == [("custom", True)]
