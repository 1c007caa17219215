"""The dispatcher end to end: outbox rows in, calls to a fake WeChat API out, every answer
recorded (states, delivery attempts, windows, mailboxes).

The fake plays the platform's side (tests/fakes/wechat_api.py); the rules the dispatcher
must follow are PROTOCOLS.md's "outbound API" section and README's "Pushes" section.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlmodel import col, select
from wechatpy import parse_message

from bot import pushes, report_pushes
from bot.channels.wechat import MESSAGE_WINDOW, to_inbound
from bot.channels.wechat_api import WeChatApi
from bot.clock import FixedClock, today
from bot.conversation import Conversation
from bot.dispatcher import Dispatcher
from bot.messages import Inbound, InboundKind, Sender
from bot.reports.periods import PeriodKind
from bot.settings import Settings
from data import members, outbox
from data.db import transaction
from data.media.store import MediaStore
from data.models import (
    Binding,
    DeliveryAttempt,
    MailboxItem,
    OutboxItem,
    OutboxState,
    PushKind,
)
from data.outbox import Push
from tests.conftest import SHANGHAI, Chat, make_settings
from tests.fakes.wechat_api import (
    CUSTOM_SEND,
    MEDIA_UPLOAD,
    STABLE_TOKEN,
    TEMPLATE_SEND,
    FakeWeChat,
)
from tests.queries import member_id

ServerFactory = Callable[..., Awaitable[TestServer]]

EVENING = dt.datetime(2026, 11, 25, 20, 30, tzinfo=SHANGHAI)
NEXT_EVENING = EVENING + dt.timedelta(days=1)
NOTICE_HEADER = "【你有 1 条新通知】"
ADMIN = "9001"


# --- the rig: a fake platform, an API client and a dispatcher on the test database ---------


@dataclass
class Rig:
    conversation: Conversation
    clock: FixedClock
    fake: FakeWeChat
    settings: Settings
    api: WeChatApi
    dispatcher: Dispatcher
    http: aiohttp.ClientSession

    async def run(self) -> Counter[str]:
        return await self.dispatcher.run_once()

    def another_dispatcher(self) -> Dispatcher:
        """A second dispatcher process on the same database (and the same API client)."""
        return Dispatcher(
            self.settings, self.clock, self.conversation.sessions, self.api, rng=random.Random(1)
        )

    async def enqueue_reminders(self) -> int:
        async with transaction(self.conversation.sessions) as session:
            return (await pushes.enqueue_reminders(session, self.settings, self.clock)).count

    async def enqueue_article(self, kind: PushKind) -> pushes.Enqueued:
        async with transaction(self.conversation.sessions) as session:
            return await pushes.enqueue_article(session, self.settings, self.clock, kind)


RigFactory = Callable[..., Rig]


@pytest.fixture
def fake() -> FakeWeChat:
    return FakeWeChat()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    session = aiohttp.ClientSession()
    yield session
    await session.close()


@pytest.fixture
async def make_rig(
    aiohttp_server: ServerFactory,
    database_url: str,
    conversation: Conversation,
    clock: FixedClock,
    fake: FakeWeChat,
    http: aiohttp.ClientSession,
) -> AsyncIterator[RigFactory]:
    server = await aiohttp_server(fake.app())
    base = str(server.make_url("")).rstrip("/")

    def build(store: MediaStore | None = None, **overrides: object) -> Rig:
        values: dict[str, object] = {
            "wechat_appid": fake.appid,
            "wechat_secret": fake.secret,
            "wechat_api_base": base,
            "delivery_rate": 10000,
            "delivery_concurrency": 10,
        }
        values.update(overrides)
        settings = make_settings(database_url, **values)
        api = WeChatApi(
            http,
            conversation.sessions,
            clock,
            base=settings.wechat_api_base,
            appid=fake.appid,
            secret=fake.secret,
        )
        dispatcher = Dispatcher(
            settings, clock, conversation.sessions, api, rng=random.Random(0), store=store
        )
        return Rig(conversation, clock, fake, settings, api, dispatcher, http)

    yield build
    # Whatever a test did, the product never asked the invalidating /cgi-bin/token.
    assert fake.calls("/cgi-bin/token") == []


@pytest.fixture
def rig(make_rig: RigFactory) -> Rig:
    return make_rig()


# --- helpers --------------------------------------------------------------------------------


def openid(roster_id: str) -> str:
    return f"openid-{roster_id}"


def paths(fake: FakeWeChat) -> list[str]:
    return [received.path for received in fake.received]


async def bind_wechat(conversation: Conversation, *roster_ids: str) -> None:
    """Bind each member to a WeChat account (openid-<roster id>), window closed."""
    async with transaction(conversation.sessions) as session:
        for roster_id in roster_ids:
            member = await members.member_by_roster_id(session, roster_id)
            assert member is not None
            await members.bind(
                session, Sender("wechat", openid(roster_id)), member, conversation.clock.now()
            )


async def set_window(
    conversation: Conversation,
    roster_id: str,
    *,
    until: dt.datetime | None = None,
    budget: int = 5,
    used: int = 0,
) -> None:
    """Set the member's WeChat window directly (default: open 48 h from now, 5 left)."""
    mid = await member_id(conversation, roster_id)  # before: transactions do not nest
    async with transaction(conversation.sessions) as session:
        binding = await _binding(session, mid)
        binding.window_until = until or conversation.clock.now() + dt.timedelta(hours=48)
        binding.window_budget = budget
        binding.window_used = used
        session.add(binding)


async def _binding(session: Any, mid: int) -> Binding:
    statement = select(Binding).where(Binding.member_id == mid, Binding.channel == "wechat")
    binding = (await session.exec(statement)).one()
    assert isinstance(binding, Binding)
    return binding


async def wechat_binding(conversation: Conversation, roster_id: str) -> Binding:
    mid = await member_id(conversation, roster_id)
    async with conversation.sessions() as session:
        return await _binding(session, mid)


async def say_on_wechat(conversation: Conversation, roster_id: str, text: str) -> str:
    """A text message from the member's WeChat account, as the webhook hands it over."""
    inbound = Inbound(
        Sender("wechat", openid(roster_id)),
        uuid.uuid4().hex,
        InboundKind.TEXT,
        conversation.clock.now(),
        text,
        MESSAGE_WINDOW,
    )
    return await conversation.respond(inbound)


def event_xml(source: str, create_time: int, event: str, key: str = "") -> str:
    return (
        "<xml><ToUserName><![CDATA[gh_qiyi]]></ToUserName>"
        f"<FromUserName><![CDATA[{source}]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event><EventKey><![CDATA[{key}]]></EventKey></xml>"
    )


def text_xml(source: str, create_time: int, content: str, msg_id: int) -> str:
    return (
        "<xml><ToUserName><![CDATA[gh_qiyi]]></ToUserName>"
        f"<FromUserName><![CDATA[{source}]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )


async def items_of(conversation: Conversation, roster_id: str) -> list[OutboxItem]:
    mid = await member_id(conversation, roster_id)
    async with conversation.sessions() as session:
        statement = select(OutboxItem).where(OutboxItem.member_id == mid)
        return list(await session.exec(statement.order_by(col(OutboxItem.id))))


async def all_items(conversation: Conversation) -> list[OutboxItem]:
    async with conversation.sessions() as session:
        return list(await session.exec(select(OutboxItem).order_by(col(OutboxItem.id))))


async def reload(conversation: Conversation, item: OutboxItem) -> OutboxItem:
    async with conversation.sessions() as session:
        fresh = await session.get(OutboxItem, item.id)
        assert fresh is not None
        return fresh


async def attempts_of(
    conversation: Conversation, item: OutboxItem
) -> list[tuple[str, bool, int | None]]:
    """(method, ok, errcode) of every delivery attempt of the item, in order."""
    async with conversation.sessions() as session:
        statement = (
            select(DeliveryAttempt)
            .where(DeliveryAttempt.outbox_id == item.id)
            .order_by(col(DeliveryAttempt.id))
        )
        return [(a.method, a.ok, a.errcode) for a in await session.exec(statement)]


async def attempt_rows(conversation: Conversation, item: OutboxItem) -> list[DeliveryAttempt]:
    async with conversation.sessions() as session:
        statement = (
            select(DeliveryAttempt)
            .where(DeliveryAttempt.outbox_id == item.id)
            .order_by(col(DeliveryAttempt.id))
        )
        return list(await session.exec(statement))


async def mailbox_of(conversation: Conversation, roster_id: str) -> list[MailboxItem]:
    mid = await member_id(conversation, roster_id)
    async with conversation.sessions() as session:
        statement = select(MailboxItem).where(MailboxItem.member_id == mid)
        return list(await session.exec(statement.order_by(col(MailboxItem.id))))


async def push(
    conversation: Conversation,
    roster_id: str,
    kind: PushKind,
    ref: str,
    *,
    due_at: dt.datetime | None = None,
) -> OutboxItem:
    """Queue one push straight into the outbox and return its row."""
    mid = await member_id(conversation, roster_id)
    now = conversation.clock.now()
    row = Push(
        mid,
        kind,
        ref,
        today(conversation.clock),
        f"{kind.value} {ref} 给 {roster_id} 的消息",
        f"{kind.value} {ref} 摘要",
        due_at or now,
    )
    async with transaction(conversation.sessions) as session:
        assert await outbox.enqueue(session, [row], now) == 1
    async with conversation.sessions() as session:
        item = (await session.exec(select(OutboxItem).where(OutboxItem.key == row.key))).one()
    return item


async def states(conversation: Conversation) -> dict[str, str]:
    """Every outbox row's state, by key."""
    return {item.key: item.state for item in await all_items(conversation)}


# --- the evening reminder -------------------------------------------------------------------


async def test_reminder_reaches_members_below_goal_once_a_day(chat: Chat, rig: Rig) -> None:
    conversation = chat.conversation
    pushed = ("1001", "1002", "1003", "2001", ADMIN)  # 2002 has no WeChat account
    await bind_wechat(conversation, *pushed)
    for roster_id in pushed:
        await say_on_wechat(conversation, roster_id, "今日")  # opens the 48 h window
    assert "已关闭" in await chat.say("1002", "提醒 关闭")
    await chat.say("1003", "学习 120")  # at the goal
    await chat.say("1001", "学习 30")

    rig.clock.set(EVENING)
    assert await rig.enqueue_reminders() == 4
    assert await rig.run() == Counter(sent=3, mailbox=1)

    texts = {roster_id: rig.fake.sent_texts(openid(roster_id)) for roster_id in pushed}
    assert texts["1002"] == [] and texts["1003"] == []
    assert len(texts["1001"]) == len(texts["2001"]) == len(texts[ADMIN]) == 1
    assert texts["1001"][0].startswith("张三，今天已学习 30/120 分钟，还差 90 分钟")
    assert texts["2001"][0].startswith("赵强，今天已学习 0/120 分钟，还差 120 分钟")
    assert texts[ADMIN][0].startswith("刘洋，今天已学习 0/120 分钟")
    assert paths(rig.fake) == [STABLE_TOKEN, CUSTOM_SEND, CUSTOM_SEND, CUSTOM_SEND]

    for roster_id in ("1001", "2001", ADMIN):
        (item,) = await items_of(conversation, roster_id)
        mid = await member_id(conversation, roster_id)
        assert item.key == f"{mid}:reminder:study:2026-11-25"
        assert (item.state, item.lease_until, item.done_at) == ("sent", None, EVENING)
        assert await attempts_of(conversation, item) == [("custom", True, 0)]
        binding = await wechat_binding(conversation, roster_id)
        assert (binding.window_budget, binding.window_used) == (5, 1)
    for roster_id in ("1002", "1003"):
        assert await items_of(conversation, roster_id) == []
        assert (await wechat_binding(conversation, roster_id)).window_used == 0
    (waiting,) = await items_of(conversation, "2002")
    assert waiting.state == OutboxState.MAILBOX.value
    assert await attempts_of(conversation, waiting) == [("mailbox", True, None)]
    assert [m.text for m in await mailbox_of(conversation, "2002")] == [
        "学习提醒：今天 0/120 分钟，回复“学习 分钟数”打卡"
    ]

    # The job runs again the same evening (a sweep, a restart): nothing new, nothing resent.
    rig.clock.set(EVENING + dt.timedelta(minutes=5))
    assert await rig.enqueue_reminders() == 0
    assert await rig.run() == Counter()
    assert len(rig.fake.calls(CUSTOM_SEND)) == 3
    assert len(await all_items(conversation)) == 4

    # The next evening everyone below the goal again is reminded; 1003 starts from 0.
    rig.clock.set(NEXT_EVENING)
    assert await rig.enqueue_reminders() == 5
    assert await rig.run() == Counter(sent=4, mailbox=1)
    assert rig.fake.sent_texts(openid("1002")) == []
    assert rig.fake.sent_texts(openid("1001"))[1].startswith("张三，今天已学习 0/120 分钟")
    (text_1003,) = rig.fake.sent_texts(openid("1003"))
    assert text_1003.startswith("王芳，今天已学习 0/120 分钟，还差 120 分钟")
    assert len(rig.fake.sent_texts(openid("2001"))) == 2
    assert len(rig.fake.sent_texts(openid(ADMIN))) == 2
    assert len(await mailbox_of(conversation, "2002")) == 2
    assert (await wechat_binding(conversation, "1001")).window_used == 2


# --- bundling and the budget ----------------------------------------------------------------


async def test_lesson_and_reminder_due_together_go_as_one_message(
    conversation: Conversation, rig: Rig
) -> None:
    await bind_wechat(conversation, "1001")  # the only member anyone can reach
    await say_on_wechat(conversation, "1001", "今日")

    rig.clock.set(EVENING)
    lesson = await rig.enqueue_article(PushKind.LESSON)
    assert lesson.count == 1
    assert await rig.enqueue_reminders() == 1
    assert await rig.run() == Counter(sent=2)

    assert len(rig.fake.calls(CUSTOM_SEND)) == 1
    (text,) = rig.fake.sent_texts(openid("1001"))
    reminder_at = text.index("张三，今天已学习 0/120 分钟")
    lesson_at = text.index(f"【今日微党课】{lesson.subject}")
    assert reminder_at < text.index("——————") < lesson_at  # the most urgent first

    binding = await wechat_binding(conversation, "1001")
    assert (binding.window_budget, binding.window_used) == (5, 1)
    items = await items_of(conversation, "1001")
    assert [(i.kind, i.state) for i in items] == [("lesson", "sent"), ("reminder", "sent")]
    for item in items:
        assert await attempts_of(conversation, item) == [("custom", True, 0)]


@pytest.mark.parametrize(
    ("left", "kind", "direct"),
    [
        (1, PushKind.REMINDER, True),
        (1, PushKind.REVIEW, True),
        (0, PushKind.REMINDER, False),
        (1, PushKind.LESSON, False),
        (2, PushKind.LESSON, True),
        (2, PushKind.NEWS, False),
        (3, PushKind.NEWS, True),
    ],
)
async def test_budget_is_kept_for_the_more_urgent_kinds(
    conversation: Conversation, rig: Rig, left: int, kind: PushKind, direct: bool
) -> None:
    await bind_wechat(conversation, "1001")
    await set_window(conversation, "1001", budget=5, used=5 - left)
    item = await push(conversation, "1001", kind, "x")

    counts = await rig.run()

    binding = await wechat_binding(conversation, "1001")
    item = await reload(conversation, item)
    if direct:
        assert counts == Counter(sent=1)
        assert paths(rig.fake) == [STABLE_TOKEN, CUSTOM_SEND]
        assert rig.fake.sent_texts(openid("1001")) == [item.text]
        assert item.state == "sent"
        assert binding.window_used == 5 - left + 1
        assert await mailbox_of(conversation, "1001") == []
    else:
        assert counts == Counter(mailbox=1)
        assert rig.fake.received == []  # not even a token: nothing to call
        assert item.state == "mailbox"
        assert await attempts_of(conversation, item) == [("mailbox", True, None)]
        assert binding.window_used == 5 - left
        assert [m.text for m in await mailbox_of(conversation, "1001")] == [item.brief]


async def test_last_unit_goes_to_the_reminder_and_news_falls_back(
    conversation: Conversation, rig: Rig
) -> None:
    await bind_wechat(conversation, "1001")
    await set_window(conversation, "1001", used=4)
    news = await push(conversation, "1001", PushKind.NEWS, "article:1")
    reminder = await push(conversation, "1001", PushKind.REMINDER, "study")

    assert await rig.run() == Counter(sent=1, mailbox=1)

    assert rig.fake.sent_texts(openid("1001")) == [reminder.text]
    assert (await reload(conversation, reminder)).state == "sent"
    assert (await reload(conversation, news)).state == "mailbox"
    assert [m.text for m in await mailbox_of(conversation, "1001")] == [news.brief]
    assert (await wechat_binding(conversation, "1001")).window_used == 5


async def test_spent_budget_sends_everything_by_fallback(
    conversation: Conversation, make_rig: RigFactory
) -> None:
    rig = make_rig(wechat_template_reminder="tmpl-reminder", wechat_template_lesson="tmpl-lesson")
    await bind_wechat(conversation, "1001")
    await set_window(conversation, "1001", used=5)
    reminder = await push(conversation, "1001", PushKind.REMINDER, "study")
    lesson = await push(conversation, "1001", PushKind.LESSON, "article:1")
    news = await push(conversation, "1001", PushKind.NEWS, "article:2")  # no template for news

    assert await rig.run() == Counter(fallback=2, mailbox=1)

    assert rig.fake.calls(CUSTOM_SEND) == []
    assert sorted(paths(rig.fake)) == sorted([STABLE_TOKEN, TEMPLATE_SEND, TEMPLATE_SEND])
    sent = {body["template_id"]: body for body in rig.fake.sent_templates(openid("1001"))}
    assert sent.keys() == {"tmpl-reminder", "tmpl-lesson"}
    assert sent["tmpl-reminder"]["client_msg_id"] == reminder.key
    assert sent["tmpl-lesson"]["client_msg_id"] == lesson.key
    assert await attempts_of(conversation, reminder) == [("template", True, 0)]
    assert await attempts_of(conversation, lesson) == [("template", True, 0)]
    assert await attempts_of(conversation, news) == [("mailbox", True, None)]
    assert await states(conversation) == {
        reminder.key: "fallback",
        lesson.key: "fallback",
        news.key: "mailbox",
    }
    assert [m.text for m in await mailbox_of(conversation, "1001")] == [news.brief]
    assert (await wechat_binding(conversation, "1001")).window_used == 5


@pytest.mark.parametrize(
    ("errcode", "state", "attempts", "reachable", "why"),
    [
        (43004, "skipped", [("template", False, 43004)], False, "43004 "),  # unfollowed
        (-1, "pending", [("template", False, -1)], True, "-1 "),  # busy: tried again later
        (40164, "failed", [("template", False, 40164)], True, "40164 "),  # configuration
        # Refused for another reason: the next rung (by default the mailbox) takes it.
        (40037, "mailbox", [("template", False, 40037), ("mailbox", True, None)], True, ""),
    ],
    ids=["unfollowed", "busy", "configuration", "refused"],
)
async def test_a_template_answer_settles_the_item_by_its_errcode(
    conversation: Conversation,
    make_rig: RigFactory,
    errcode: int,
    state: str,
    attempts: list[tuple[str, bool, int | None]],
    reachable: bool,
    why: str,
) -> None:
    rig = make_rig(wechat_template_reminder="tmpl-reminder")
    await bind_wechat(conversation, "1001")  # window closed: the template rung
    rig.clock.set(EVENING)
    assert await rig.enqueue_reminders() == 1
    rig.fake.fail_next(TEMPLATE_SEND, errcode)

    await rig.run()

    (item,) = await items_of(conversation, "1001")
    assert item.state == state
    assert item.last_error.startswith(why)
    assert await attempts_of(conversation, item) == attempts
    assert (await wechat_binding(conversation, "1001")).reachable is reachable
    assert len(await mailbox_of(conversation, "1001")) == (state == "mailbox")
    if state == "mailbox":  # the template rung's reason goes with it
        async with conversation.sessions() as session:
            statement = select(DeliveryAttempt.detail).where(
                DeliveryAttempt.outbox_id == item.id, DeliveryAttempt.method == "mailbox"
            )
            assert (await session.exec(statement)).one().startswith("template refused: 40037 ")
    assert len(await mailbox_of(conversation, ADMIN)) + len(
        await items_of(conversation, ADMIN)
    ) == 2 * (errcode == 40164)  # the admins' alert: an item, then its mailbox entry


async def test_items_without_a_template_wait_beside_those_sent_by_one(
    conversation: Conversation, make_rig: RigFactory
) -> None:
    rig = make_rig(wechat_template_lesson="tmpl-lesson")
    await bind_wechat(conversation, "1001")  # window closed: the template rung
    reminder = await push(conversation, "1001", PushKind.REMINDER, "study")  # no template
    lesson = await push(conversation, "1001", PushKind.LESSON, "article:1")

    assert await rig.run() == Counter(fallback=1, mailbox=1)

    assert await states(conversation) == {reminder.key: "mailbox", lesson.key: "fallback"}
    assert [m.text for m in await mailbox_of(conversation, "1001")] == [reminder.brief]


async def test_an_unfollowed_template_answer_skips_the_rest_without_trying_them(
    conversation: Conversation, make_rig: RigFactory
) -> None:
    rig = make_rig(wechat_template_reminder="tmpl-reminder", wechat_template_review="tmpl-review")
    await bind_wechat(conversation, "1001")  # window closed: the template rung
    rig.fake.not_following(openid("1001"))
    reminder = await push(conversation, "1001", PushKind.REMINDER, "study")
    review = await push(conversation, "1001", PushKind.REVIEW, "entry:1")

    assert await rig.run() == Counter(skipped=2)

    assert len(rig.fake.calls(TEMPLATE_SEND)) == 1
    for item in (reminder, review):
        row = await reload(conversation, item)
        assert (row.state, row.last_error[:6]) == ("skipped", "43004 ")
    assert (await wechat_binding(conversation, "1001")).reachable is False


# --- window closed on the platform's side (45015) -------------------------------------------


async def test_window_closed_falls_back_to_the_template(
    conversation: Conversation, make_rig: RigFactory
) -> None:
    rig = make_rig(wechat_template_reminder="tmpl-reminder", wechat_template_review="tmpl-review")
    await bind_wechat(conversation, "1001")
    await set_window(conversation, "1001")
    rig.clock.set(EVENING)
    assert await rig.enqueue_reminders() == 1
    rig.fake.fail_next(CUSTOM_SEND, 45015)

    assert await rig.run() == Counter(fallback=1)

    (item,) = await items_of(conversation, "1001")
    assert item.brief.startswith("学习提醒：今天 0/120 分钟")
    assert rig.fake.sent_templates(openid("1001")) == [
        {
            "touser": openid("1001"),
            "template_id": "tmpl-reminder",
            "client_msg_id": item.key,
            "data": {
                "thing1": {"value": item.brief[:20]},
                "time2": {"value": "2026-11-25 20:30"},
            },
        }
    ]
    assert rig.fake.sent_texts() == []
    assert paths(rig.fake) == [STABLE_TOKEN, CUSTOM_SEND, TEMPLATE_SEND]
    assert (item.state, item.done_at, item.lease_until) == ("fallback", EVENING, None)
    assert await attempts_of(conversation, item) == [
        ("custom", False, 45015),
        ("template", True, 0),
    ]
    # The platform says the window is spent: no more customer-service tries in it.
    binding = await wechat_binding(conversation, "1001")
    assert binding.window_used == binding.window_budget == 5

    review = await push(conversation, "1001", PushKind.REVIEW, "entry:1")
    assert await rig.run() == Counter(fallback=1)
    assert len(rig.fake.calls(CUSTOM_SEND)) == 1
    assert await attempts_of(conversation, review) == [("template", True, 0)]
    assert [b["template_id"] for b in rig.fake.sent_templates()] == ["tmpl-reminder", "tmpl-review"]


async def test_window_closed_without_template_waits_in_the_mailbox(
    conversation: Conversation, rig: Rig
) -> None:
    await bind_wechat(conversation, "1001")
    await set_window(conversation, "1001")
    rig.clock.set(EVENING)
    assert await rig.enqueue_reminders() == 1
    rig.fake.fail_next(CUSTOM_SEND, 45015)

    assert await rig.run() == Counter(mailbox=1)

    (item,) = await items_of(conversation, "1001")
    assert item.state == "mailbox"
    assert await attempts_of(conversation, item) == [
        ("custom", False, 45015),
        ("mailbox", True, None),
    ]
    assert rig.fake.calls(TEMPLATE_SEND) == []
    (notice,) = await mailbox_of(conversation, "1001")
    assert (notice.text, notice.delivered_at) == (item.brief, None)

    rig.clock.advance(minutes=10)
    reply = await say_on_wechat(conversation, "1001", "今日")
    assert reply.startswith(f"{NOTICE_HEADER}\n1. {item.brief}\n")
    assert "\n——————\n今日学习：0/120 分钟" in reply  # the answer to 今日 follows
    (notice,) = await mailbox_of(conversation, "1001")
    assert notice.delivered_at == rig.clock.now()

    again = await say_on_wechat(conversation, "1001", "今日")
    assert "新通知" not in again
    assert item.brief not in again
    # Passive replies cost nothing: the push API was not called for them.
    assert paths(rig.fake) == [STABLE_TOKEN, CUSTOM_SEND]


# --- platform errors ------------------------------------------------------------------------


async def test_expired_token_is_refreshed_once_and_the_send_retried(
    conversation: Conversation, rig: Rig
) -> None:
    await bind_wechat(conversation, "1001")
    await set_window(conversation, "1001")
    first = await push(conversation, "1001", PushKind.REVIEW, "entry:1")
    assert await rig.run() == Counter(sent=1)
    assert len(rig.fake.tokens_issued) == 1

    second = await push(conversation, "1001", PushKind.REVIEW, "entry:2")
    rig.fake.expire_token()
    assert await rig.run() == Counter(sent=1)

    old, new = rig.fake.tokens_issued
    assert paths(rig.fake) == [STABLE_TOKEN, CUSTOM_SEND, CUSTOM_SEND, STABLE_TOKEN, CUSTOM_SEND]
    used = [call.query["access_token"] for call in rig.fake.calls(CUSTOM_SEND)]
    assert used == [old, old, new]
    assert rig.fake.sent_texts(openid("1001")) == [first.text, second.text]
    # The token error is the API client's business: one attempt, and it succeeded.
    assert await attempts_of(conversation, second) == [("custom", True, 0)]
    assert (await reload(conversation, second)).state == "sent"
    assert (await wechat_binding(conversation, "1001")).window_used == 2


async def test_unfollowed_member_is_skipped_and_not_queued_again(
    conversation: Conversation, rig: Rig
) -> None:
    await bind_wechat(conversation, "1001", "1002")  # nobody else is reachable anywhere
    await set_window(conversation, "1001")
    await set_window(conversation, "1002")
    rig.fake.not_following(openid("1001"))
    rig.clock.set(EVENING)
    assert await rig.enqueue_reminders() == 2

    assert await rig.run() == Counter(sent=1, skipped=1)

    (gone,) = await items_of(conversation, "1001")
    assert (gone.state, gone.last_error) == ("skipped", "43004 require subscribe")
    assert gone.attempts == 0 and gone.done_at == EVENING
    assert await attempts_of(conversation, gone) == [("custom", False, 43004)]
    binding = await wechat_binding(conversation, "1001")
    assert binding.reachable is False
    assert binding.window_used == 0
    assert rig.fake.sent_texts(openid("1001")) == []
    assert len(rig.fake.sent_texts(openid("1002"))) == 1

    # The next push goes to 1002 only.
    news = await rig.enqueue_article(PushKind.NEWS)
    assert news.count == 1
    assert [i.key for i in await items_of(conversation, "1001")] == [gone.key]
    assert [i.kind for i in await items_of(conversation, "1002")] == ["reminder", "news"]

    # A row queued before the unfollow became known is skipped without calling the platform.
    stale = await push(conversation, "1001", PushKind.LESSON, "article:1")
    calls = len(rig.fake.calls(CUSTOM_SEND))
    counts = await rig.run()
    assert counts == Counter(skipped=1, sent=1)
    assert len(rig.fake.calls(CUSTOM_SEND)) == calls + 1  # 1002's news only
    assert (await reload(conversation, stale)).state == "skipped"

    rig.clock.set(NEXT_EVENING)
    assert await rig.enqueue_reminders() == 1
    assert len(await items_of(conversation, "1001")) == 2


def _busy(fake: FakeWeChat) -> None:
    fake.fail_next(CUSTOM_SEND, -1)


def _gateway(fake: FakeWeChat) -> None:
    fake.fail_http(CUSTOM_SEND, 502)


@pytest.mark.parametrize(
    ("fail", "errcode", "error", "detail"),
    [(_busy, -1, "-1 system error", "system error"), (_gateway, None, "HTTP 502", "HTTP 502")],
    ids=["busy", "http-502"],
)
async def test_transient_failure_backs_off_then_sends(
    conversation: Conversation,
    make_rig: RigFactory,
    fail: Callable[[FakeWeChat], None],
    errcode: int | None,
    error: str,
    detail: str,
) -> None:
    rig = make_rig(delivery_backoff_seconds=60)
    await bind_wechat(conversation, "1001")
    await set_window(conversation, "1001")
    item = await push(conversation, "1001", PushKind.REMINDER, "study")
    fail(rig.fake)
    start = rig.clock.now()

    assert await rig.run() == Counter(retry=1)

    item = await reload(conversation, item)
    assert (item.state, item.attempts, item.lease_until, item.done_at) == ("pending", 1, None, None)
    assert item.last_error == error
    assert start + dt.timedelta(seconds=30) <= item.due_at <= start + dt.timedelta(seconds=90)
    (attempt,) = await attempt_rows(conversation, item)
    assert (attempt.method, attempt.ok, attempt.errcode) == ("custom", False, errcode)
    assert attempt.detail == detail
    assert (await wechat_binding(conversation, "1001")).window_used == 0

    # Not before its time…
    assert await rig.run() == Counter()
    rig.clock.set(item.due_at - dt.timedelta(seconds=1))
    assert await rig.run() == Counter()
    assert len(rig.fake.calls(CUSTOM_SEND)) == 1

    # …then once.
    rig.clock.set(item.due_at + dt.timedelta(seconds=1))
    assert await rig.run() == Counter(sent=1)
    item = await reload(conversation, item)
    assert (item.state, item.attempts) == ("sent", 1)
    assert await attempts_of(conversation, item) == [
        ("custom", False, errcode),
        ("custom", True, 0),
    ]
    assert rig.fake.sent_texts(openid("1001")) == [item.text]
    assert (await wechat_binding(conversation, "1001")).window_used == 1


async def test_repeated_failures_end_failed_and_can_be_retried(
    conversation: Conversation, make_rig: RigFactory
) -> None:
    base = 60.0
    rig = make_rig(delivery_max_attempts=3, delivery_backoff_seconds=base)
    await bind_wechat(conversation, "1001")
    await set_window(conversation, "1001")
    item = await push(conversation, "1001", PushKind.REMINDER, "study")
    rig.fake.fail_next(CUSTOM_SEND, -1, times=3)

    for attempt in (1, 2):
        now = rig.clock.now()
        assert await rig.run() == Counter(retry=1)
        item = await reload(conversation, item)
        assert (item.state, item.attempts) == ("pending", attempt)
        backoff = base * 2 ** (attempt - 1)
        delay = (item.due_at - now).total_seconds()
        assert 0.5 * backoff <= delay <= 1.5 * backoff
        rig.clock.set(item.due_at + dt.timedelta(seconds=1))

    assert await rig.run() == Counter(failed=1)
    item = await reload(conversation, item)
    assert (item.state, item.attempts, item.last_error) == ("failed", 3, "-1 system error")
    assert item.done_at == rig.clock.now()
    assert await attempts_of(conversation, item) == [("custom", False, -1)] * 3

    # Failed stays failed, however long one waits.
    rig.clock.advance(days=1)
    assert await rig.run() == Counter()
    assert len(rig.fake.calls(CUSTOM_SEND)) == 3

    async with transaction(conversation.sessions) as session:
        assert await outbox.retry_failed(session, rig.clock.now()) == 1
    item = await reload(conversation, item)
    assert (item.state, item.attempts, item.due_at) == ("pending", 0, rig.clock.now())

    assert await rig.run() == Counter(sent=1)
    assert (await reload(conversation, item)).state == "sent"
    assert rig.fake.sent_texts(openid("1001")) == [item.text]
    assert len(rig.fake.calls(CUSTOM_SEND)) == 4


async def test_ip_not_whitelisted_fails_and_alerts_the_admins_once_a_day(
    conversation: Conversation, rig: Rig
) -> None:
    await bind_wechat(conversation, "1001", "1002")
    await set_window(conversation, "1001")
    await set_window(conversation, "1002")
    first = await push(conversation, "1001", PushKind.REMINDER, "study")
    rig.fake.fail_next(CUSTOM_SEND, 40164)

    # The alert may go out in the same round or the next one.
    counts = await rig.run() + await rig.run()
    assert counts == Counter(failed=1, mailbox=1)

    first = await reload(conversation, first)
    assert (first.state, first.attempts) == ("failed", 0)
    assert first.last_error == "40164 invalid ip, not in whitelist"
    assert await attempts_of(conversation, first) == [("custom", False, 40164)]
    (alert,) = await mailbox_of(conversation, ADMIN)
    assert "40164" in alert.text and "白名单" in alert.text
    assert alert.delivered_at is None
    admin = await member_id(conversation, ADMIN)
    (alert_item,) = await items_of(conversation, ADMIN)
    assert alert_item.key == f"{admin}:alert:wechat-40164:2026-11-25"
    assert alert_item.state == "mailbox"
    assert paths(rig.fake) == [STABLE_TOKEN, CUSTOM_SEND]  # no retry, alerts need no API

    # Later that day it happens again: the item fails, the admin is not told twice.
    rig.clock.advance(hours=3)
    second = await push(conversation, "1002", PushKind.REMINDER, "study")
    rig.fake.fail_next(CUSTOM_SEND, 40164)
    assert await rig.run() + await rig.run() == Counter(failed=1)
    assert (await reload(conversation, second)).state == "failed"
    assert len(await mailbox_of(conversation, ADMIN)) == 1

    # The next day it is news again.
    rig.clock.advance(days=1)
    third = await push(conversation, "1002", PushKind.LESSON, "article:1")
    rig.fake.fail_next(CUSTOM_SEND, 40164)
    assert await rig.run() + await rig.run() == Counter(failed=1, mailbox=1)
    assert (await reload(conversation, third)).state == "failed"
    assert len(await mailbox_of(conversation, ADMIN)) == 2
    assert len(rig.fake.calls(CUSTOM_SEND)) == 3


async def test_two_configuration_errors_in_one_round_make_one_alert_naming_both(
    conversation: Conversation, rig: Rig
) -> None:
    await bind_wechat(conversation, "1001", "1002")
    await set_window(conversation, "1001")
    await set_window(conversation, "1002")
    await push(conversation, "1001", PushKind.REMINDER, "study")
    await push(conversation, "1002", PushKind.REMINDER, "study")
    rig.fake.fail_next(CUSTOM_SEND, 48001)
    rig.fake.fail_next(CUSTOM_SEND, 40164)

    assert await rig.run() + await rig.run() == Counter(failed=2, mailbox=1)

    admin = await member_id(conversation, ADMIN)
    (alert_item,) = await items_of(conversation, ADMIN)
    assert alert_item.key == f"{admin}:alert:wechat-40164-48001:2026-11-25"
    (alert,) = await mailbox_of(conversation, ADMIN)
    assert "40164" in alert.text and "48001" in alert.text


async def test_a_refused_token_fails_the_rounds_template_sends_without_asking_again(
    conversation: Conversation, make_rig: RigFactory
) -> None:
    # One send at a time: the second bundle's turn comes after the refusal is known.
    rig = make_rig(wechat_template_reminder="tmpl-reminder", delivery_concurrency=1)
    await bind_wechat(conversation, "1001", "1002")  # out of the window: the template rung
    rig.clock.set(EVENING)
    assert await rig.enqueue_reminders() == 2
    rig.fake.fail_next(STABLE_TOKEN, 40164, times=10)

    assert await rig.run() + await rig.run() == Counter(failed=2, mailbox=1)

    assert len(rig.fake.calls(STABLE_TOKEN)) == 1
    assert rig.fake.calls(TEMPLATE_SEND) == []
    for roster_id in ("1001", "1002"):
        (item,) = await items_of(conversation, roster_id)
        assert (item.state, item.last_error[:6]) == ("failed", "40164 ")
        assert await attempts_of(conversation, item) == [("template", False, 40164)]


async def test_daily_quota_pauses_customer_service_within_the_same_round(
    conversation: Conversation, make_rig: RigFactory
) -> None:
    # One send at a time: when the second bundle's turn comes the 45009 is known. (With
    # more in flight, sends already under way cannot be recalled; the platform refuses them.)
    rig = make_rig(wechat_template_reminder="tmpl-reminder", delivery_concurrency=1)
    await bind_wechat(conversation, "1001", "1002")
    await set_window(conversation, "1001")
    await set_window(conversation, "1002")
    rig.clock.set(EVENING)
    assert await rig.enqueue_reminders() == 2
    rig.fake.fail_next(CUSTOM_SEND, 45009)

    assert await rig.run() == Counter(fallback=2)

    # One customer-service call hit the quota; the other member's push did not try again.
    assert len(rig.fake.calls(CUSTOM_SEND)) == 1
    assert rig.fake.sent_texts() == []
    assert sorted(b["touser"] for b in rig.fake.sent_templates()) == [
        openid("1001"),
        openid("1002"),
    ]
    tried = rig.fake.calls(CUSTOM_SEND)[0].body["touser"]
    for roster_id in ("1001", "1002"):
        (item,) = await items_of(conversation, roster_id)
        assert item.state == "fallback"
        expected = [("template", True, 0)]
        if openid(roster_id) == tried:
            expected = [("custom", False, 45009), *expected]
        assert await attempts_of(conversation, item) == expected
        assert (await wechat_binding(conversation, roster_id)).window_used == 0


async def test_daily_quota_pauses_customer_service_until_midnight(
    conversation: Conversation, rig: Rig
) -> None:
    await bind_wechat(conversation, "1001", "1002")
    await set_window(conversation, "1001")
    await set_window(conversation, "1002")
    rig.clock.set(EVENING + dt.timedelta(seconds=17, microseconds=250_000))
    first = await push(conversation, "1001", PushKind.REMINDER, "study")
    rig.fake.fail_next(CUSTOM_SEND, 45009)

    assert await rig.run() == Counter(mailbox=1)  # no template configured
    assert await attempts_of(conversation, first) == [
        ("custom", False, 45009),
        ("mailbox", True, None),
    ]
    assert [m.text for m in await mailbox_of(conversation, "1001")] == [first.brief]

    # Later that evening, another member: still paused, no customer-service call.
    rig.clock.set(EVENING + dt.timedelta(hours=3, minutes=29))  # 23:59
    second = await push(conversation, "1002", PushKind.REVIEW, "entry:1")
    assert await rig.run() == Counter(mailbox=1)
    assert len(rig.fake.calls(CUSTOM_SEND)) == 1
    assert await attempts_of(conversation, second) == [("mailbox", True, None)]

    # From midnight on customer service works again.
    rig.clock.set(dt.datetime(2026, 11, 26, 0, 0, 0, tzinfo=SHANGHAI))
    third = await push(conversation, "1002", PushKind.REVIEW, "entry:2")
    assert await rig.run() == Counter(sent=1)
    assert rig.fake.sent_texts(openid("1002")) == [third.text]
    assert (await wechat_binding(conversation, "1002")).window_used == 1


# --- a dispatcher killed between send and confirm -------------------------------------------


async def test_unconfirmed_send_is_sent_again_after_the_lease(
    conversation: Conversation, rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    await bind_wechat(conversation, "1001", "1002")
    await set_window(conversation, "1001")
    await set_window(conversation, "1002")
    confirmed = await push(conversation, "1001", PushKind.REMINDER, "study")
    assert await rig.run() == Counter(sent=1)

    lease = dt.timedelta(seconds=rig.settings.delivery_lease_seconds)
    unconfirmed = await push(conversation, "1002", PushKind.REMINDER, "study")
    later = await push(
        conversation, "1001", PushKind.LESSON, "article:1", due_at=rig.clock.now() + lease
    )

    async def killed(results: object) -> None:
        raise RuntimeError("killed between send and confirm")

    monkeypatch.setattr(rig.dispatcher, "_apply", killed)
    crashed_at = rig.clock.now()
    with pytest.raises(RuntimeError, match="killed"):
        await rig.run()
    # Sent on the platform, not confirmed here: leased, no attempt recorded.
    assert rig.fake.sent_texts(openid("1002")) == [unconfirmed.text]
    row = await reload(conversation, unconfirmed)
    assert (row.state, row.lease_until) == ("sending", crashed_at + lease)
    assert await attempts_of(conversation, row) == []

    recovery = rig.another_dispatcher()
    rig.clock.set(crashed_at + lease - dt.timedelta(seconds=1))
    assert await recovery.run_once() == Counter()  # still leased; `later` not yet due
    assert len(rig.fake.calls(CUSTOM_SEND)) == 2

    rig.clock.set(crashed_at + lease + dt.timedelta(seconds=1))
    assert await recovery.run_once() == Counter(sent=2)

    assert rig.fake.sent_texts(openid("1002")) == [unconfirmed.text, unconfirmed.text]
    assert rig.fake.sent_texts(openid("1001")) == [confirmed.text, later.text]
    assert await states(conversation) == {
        confirmed.key: "sent",
        unconfirmed.key: "sent",
        later.key: "sent",
    }
    assert await attempts_of(conversation, unconfirmed) == [("custom", True, 0)]
    assert await attempts_of(conversation, confirmed) == [("custom", True, 0)]
    assert (await reload(conversation, unconfirmed)).lease_until is None
    # The spend of the lost confirmation is unknown to the bot; the recorded one counts.
    assert (await wechat_binding(conversation, "1002")).window_used == 1
    assert await recovery.run_once() == Counter()


# --- quiet hours ----------------------------------------------------------------------------


async def test_reminder_in_quiet_hours_waits_for_the_morning(
    conversation: Conversation, rig: Rig
) -> None:
    await bind_wechat(conversation, "1001")
    await set_window(conversation, "1001")
    async with transaction(conversation.sessions) as session:
        member = await members.member_by_roster_id(session, "1001")
        assert member is not None
        member.reminder_time = dt.time(22, 30)  # 提醒 refuses quiet times; set it directly
        session.add(member)

    rig.clock.set(dt.datetime(2026, 11, 25, 22, 30, tzinfo=SHANGHAI))
    assert await rig.enqueue_reminders() == 1
    (item,) = await items_of(conversation, "1001")
    morning = dt.datetime(2026, 11, 26, 7, 0, tzinfo=SHANGHAI)
    assert item.due_at == morning
    assert item.day == dt.date(2026, 11, 25)

    rig.clock.set(dt.datetime(2026, 11, 25, 22, 31, tzinfo=SHANGHAI))
    assert await rig.run() == Counter()
    rig.clock.set(morning - dt.timedelta(minutes=1))
    assert await rig.run() == Counter()
    assert rig.fake.received == []

    rig.clock.set(morning)
    assert await rig.run() == Counter(sent=1)
    assert rig.fake.sent_texts(openid("1001")) == [item.text]
    item = await reload(conversation, item)
    assert (item.state, item.done_at) == ("sent", morning)


# --- the contact window ---------------------------------------------------------------------


async def test_contact_window_opens_on_messages_and_closes_after_48_hours(
    conversation: Conversation, rig: Rig
) -> None:
    await bind_wechat(conversation, "1001")
    clock = rig.clock
    start = clock.now()

    # A text message: 48 hours, 5 messages.
    message = parse_message(text_xml(openid("1001"), int(start.timestamp()), "今日", 1))
    await conversation.respond(to_inbound(message, clock, {}))
    binding = await wechat_binding(conversation, "1001")
    assert binding.window_until == start + dt.timedelta(hours=48)
    assert (binding.window_budget, binding.window_used) == (5, 0)

    # Messages of the same conversation within the minute keep it (one write saved each);
    # the next message after that moves it to 48 hours from then.
    for seconds, number in ((30, 2), (60, 3)):
        clock.set(start + dt.timedelta(seconds=seconds))
        later = text_xml(openid("1001"), int(clock.now().timestamp()), "今日", number)
        await conversation.respond(to_inbound(parse_message(later), clock, {}))
        binding = await wechat_binding(conversation, "1001")
        assert binding.window_until == start + dt.timedelta(hours=48)
    clock.set(start + dt.timedelta(seconds=61))
    later = text_xml(openid("1001"), int(clock.now().timestamp()), "今日", 4)
    await conversation.respond(to_inbound(parse_message(later), clock, {}))
    binding = await wechat_binding(conversation, "1001")
    assert binding.window_until == clock.now() + dt.timedelta(hours=48)
    start = clock.now()

    # A menu click after it opens 1 minute and 3, which must not cut the longer window.
    clock.advance(minutes=10)
    click = parse_message(event_xml(openid("1001"), int(clock.now().timestamp()), "CLICK", "X"))
    await conversation.respond(to_inbound(click, clock, {}))
    binding = await wechat_binding(conversation, "1001")
    assert binding.window_until == start + dt.timedelta(hours=48)
    assert (binding.window_budget, binding.window_used) == (5, 0)

    inside = await push(conversation, "1001", PushKind.REVIEW, "entry:1")
    assert await rig.run() == Counter(sent=1)
    assert rig.fake.sent_texts(openid("1001")) == [inside.text]
    assert (await wechat_binding(conversation, "1001")).window_used == 1

    # 49 hours after the message the window is shut: fallback, no customer-service call.
    clock.set(start + dt.timedelta(hours=49))
    outside = await push(conversation, "1001", PushKind.REVIEW, "entry:2")
    assert await rig.run() == Counter(mailbox=1)
    assert len(rig.fake.calls(CUSTOM_SEND)) == 1
    assert await attempts_of(conversation, outside) == [("mailbox", True, None)]
    assert [m.text for m in await mailbox_of(conversation, "1001")] == [outside.brief]

    # Once it has lapsed, a click opens a short window of its own: 1 minute, 3 messages.
    click = parse_message(event_xml(openid("1001"), int(clock.now().timestamp()), "CLICK", "Y"))
    await conversation.respond(to_inbound(click, clock, {}))
    binding = await wechat_binding(conversation, "1001")
    assert binding.window_until == clock.now() + dt.timedelta(minutes=1)
    assert (binding.window_budget, binding.window_used) == (3, 0)


# --- review results -------------------------------------------------------------------------


async def test_approval_is_pushed_to_the_member(chat: Chat, rig: Rig) -> None:
    conversation = chat.conversation
    await bind_wechat(conversation, "1001")
    await say_on_wechat(conversation, "1001", "今日")
    submitted = await chat.say("1001", "志愿 2 陪老人")
    found = re.search(r"编号 (\d+)", submitted)
    assert found is not None, submitted
    entry_id = int(found.group(1))
    assert "已通过" in await chat.say("1003", f"通过 {entry_id}")

    (item,) = await items_of(conversation, "1001")
    mid = await member_id(conversation, "1001")
    assert (item.key, item.state) == (f"{mid}:review:entry:{entry_id}:2026-11-25", "pending")

    assert await rig.run() == Counter(sent=1)

    (text,) = rig.fake.sent_texts(openid("1001"))
    assert text == item.text
    assert text.startswith(f"你的志愿服务 #{entry_id}（2 小时，陪老人）已通过审核")
    item = await reload(conversation, item)
    assert item.state == "sent"
    assert await attempts_of(conversation, item) == [("custom", True, 0)]
    assert (await wechat_binding(conversation, "1001")).window_used == 1
    assert paths(rig.fake) == [STABLE_TOKEN, CUSTOM_SEND]
    # Nobody else heard about it.
    assert rig.fake.sent_texts() == [text]
    assert await mailbox_of(conversation, "1001") == []


# --- report pictures ----------------------------------------------------------------------


async def enqueue_month_report(rig: Rig) -> None:
    async with transaction(rig.conversation.sessions) as session:
        await report_pushes.enqueue_report(
            session, rig.settings, rig.clock, rig.conversation.report_context, PeriodKind.MONTH
        )


async def test_a_report_goes_with_its_chart_while_the_budget_allows(
    chat: Chat, make_rig: RigFactory, tmp_path: Path
) -> None:
    rig = make_rig(reports_dir=tmp_path)
    rig.clock.set(dt.datetime(2026, 12, 1, 8, 0, tzinfo=SHANGHAI))
    await bind_wechat(rig.conversation, "1003", "2002")
    await set_window(rig.conversation, "1003")  # 5 left: text and picture
    await set_window(rig.conversation, "2002", used=3)  # 2 left: the text only
    await enqueue_month_report(rig)

    await rig.run()

    assert "【2026年11月 支部评分】" in rig.fake.sent_texts(openid("1003"))[0]
    assert len(rig.fake.uploads) == 1
    upload = rig.fake.uploads[0]
    assert upload.data.startswith(b"\x89PNG")
    assert rig.fake.sent_images(openid("1003")) == [upload.media_id]
    assert (await wechat_binding(rig.conversation, "1003")).window_used == 2
    # The last unit is kept for a reminder or a review result: no picture for 2002.
    assert len(rig.fake.sent_texts(openid("2002"))) == 1
    assert rig.fake.sent_images(openid("2002")) == []
    assert (await wechat_binding(rig.conversation, "2002")).window_used == 4
    assert (tmp_path / "2026-11.png").is_file()


async def push_charts(rig: Rig, roster_id: str, charts: list[Path]) -> list[OutboxItem]:
    """Reports with a chart each, due now for the member (one bundle)."""
    mid = await member_id(rig.conversation, roster_id)
    now = rig.clock.now()
    day = today(rig.clock)
    rows = [
        Push(mid, PushKind.REPORT, f"r{n}", day, f"报告{n}", f"报告{n}", now, str(chart))
        for n, chart in enumerate(charts)
    ]
    async with transaction(rig.conversation.sessions) as session:
        assert await outbox.enqueue(session, rows, now) == len(rows)
    return await items_of(rig.conversation, roster_id)


@pytest.mark.parametrize(
    ("used", "refused", "images", "window_used"),
    [
        (0, None, 2, 3),  # text 1, the charts 2 and 3
        (2, None, 1, 4),  # text 3, the first chart 4: the second would take the kept unit
        (0, 40005, 1, 2),  # the first chart refused: lost alone, the second still goes
    ],
    ids=["both", "reserve", "refused"],
)
async def test_each_chart_of_a_bundle_goes_while_the_budget_allows_and_alone_fails(
    conversation: Conversation,
    rig: Rig,
    tmp_path: Path,
    used: int,
    refused: int | None,
    images: int,
    window_used: int,
) -> None:
    charts = [tmp_path / "a.png", tmp_path / "b.png"]
    for n, chart in enumerate(charts):
        chart.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes([n]) * 64)
    await bind_wechat(conversation, "1001")
    await set_window(conversation, "1001", used=used)
    first, second = await push_charts(rig, "1001", charts)
    if refused:
        rig.fake.fail_next(MEDIA_UPLOAD, refused)

    assert await rig.run() == Counter(sent=2)

    assert len(rig.fake.sent_texts(openid("1001"))) == 1  # the digest of both
    assert len(rig.fake.sent_images(openid("1001"))) == images
    assert (await wechat_binding(conversation, "1001")).window_used == window_used
    if refused:
        assert await attempts_of(conversation, first) == [
            ("custom", True, 0),
            ("image", False, refused),  # the refusal's errcode, its text in the detail
        ]
        assert await attempts_of(conversation, second) == [("custom", True, 0), ("image", True, 0)]
        async with conversation.sessions() as session:
            statement = select(DeliveryAttempt.detail).where(DeliveryAttempt.method == "image")
            details = list(await session.exec(statement.order_by(col(DeliveryAttempt.id))))
        assert details == [f"{refused} invalid file type", "ok"]
    else:
        assert await attempts_of(conversation, first) == [("custom", True, 0), ("image", True, 0)]
        assert await attempts_of(conversation, second) == [("custom", True, 0)] + [
            ("image", True, 0)
        ] * (images - 1)
