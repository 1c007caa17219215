"""What gets pushed and to whom: the evening reminders, the lesson and news pushes, and the
quiet hours that defer them (bot/pushes.py, data/audience.py, data/articles.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update
from sqlmodel import col, select

from bot import pushes
from bot.clock import FixedClock
from bot.conversation import Conversation
from bot.settings import QuietHours, Settings, parse_quiet_hours
from data import members
from data.db import transaction
from data.models import Article, ArticleKind, Member, OutboxItem, PushKind
from tests.conftest import MORNING, SHANGHAI, Chat, make_settings
from tests.queries import count, member_id

TODAY = MORNING.date()  # 2026-11-25
GOAL = 120


def at(hour: int, minute: int = 0, day: int = 25, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


async def reminders(conversation: Conversation, settings: Settings | None = None) -> int:
    async with transaction(conversation.sessions) as session:
        done = await pushes.enqueue_reminders(
            session, settings or conversation.settings, conversation.clock
        )
    assert done.kind is PushKind.REMINDER
    return done.count


async def article_push(
    conversation: Conversation, kind: PushKind, settings: Settings | None = None
) -> pushes.Enqueued:
    async with transaction(conversation.sessions) as session:
        return await pushes.enqueue_article(
            session, settings or conversation.settings, conversation.clock, kind
        )


async def outbox_items(conversation: Conversation) -> list[OutboxItem]:
    async with conversation.sessions() as session:
        return list(await session.exec(select(OutboxItem).order_by(col(OutboxItem.id))))


async def roster_ids(conversation: Conversation, items: list[OutboxItem]) -> list[str]:
    """The roster ids (工号) the items go to, in item order."""
    async with conversation.sessions() as session:
        by_id = {m.id: m.roster_id for m in await session.exec(select(Member))}
    return [by_id[item.member_id] for item in items]


async def set_member(conversation: Conversation, roster_id: str, **values: Any) -> None:
    async with transaction(conversation.sessions) as session:
        await session.exec(
            update(Member).where(col(Member.roster_id) == roster_id).values(**values)
        )


async def unfollow(chat: Chat, roster_id: str) -> None:
    async with transaction(chat.conversation.sessions) as session:
        assert await members.mark_unreachable(session, chat.sender(roster_id))


async def articles_of(conversation: Conversation, kind: ArticleKind) -> list[Article]:
    async with conversation.sessions() as session:
        statement = (
            select(Article).where(Article.kind == kind.value).order_by(col(Article.publish_at))
        )
        return list(await session.exec(statement))


# --- reminders ---------------------------------------------------------------------------


async def test_reminders_go_to_reachable_members_due_and_below_goal(
    chat: Chat, clock: FixedClock
) -> None:
    conversation = chat.conversation
    # 09:00: two entries summing to one minute below the goal, and one member at the goal.
    await chat.say("1002", "学习 60")
    await chat.say("1002", "学习 59")
    await chat.say("1003", "学习 120")
    await set_member(conversation, "1001", reminder_time=dt.time(19, 0))
    await set_member(conversation, "2002", reminder_enabled=False)
    await unfollow(chat, "2001")

    clock.set(at(19, 5))
    assert await reminders(conversation) == 1
    items = await outbox_items(conversation)
    assert await roster_ids(conversation, items) == ["1001"]

    clock.set(at(20, 29))  # the default time (20:30) not reached yet
    assert await reminders(conversation) == 0

    clock.set(at(20, 30))
    assert await reminders(conversation) == 2  # 1001 was reminded at 19:05 already

    items = await outbox_items(conversation)
    assert await roster_ids(conversation, items) == ["1001", "1002", "9001"]
    first, second, third = items
    assert [item.kind for item in items] == ["reminder"] * 3
    assert [item.state for item in items] == ["pending"] * 3
    assert [item.day for item in items] == [TODAY] * 3
    assert [item.due_at for item in items] == [at(19, 5), at(20, 30), at(20, 30)]
    assert first.text.startswith("张三，今天已学习 0/120 分钟，还差 120 分钟")
    assert second.text.startswith("李四，今天已学习 119/120 分钟，还差 1 分钟")
    assert third.text.startswith("刘洋，今天已学习 0/120 分钟")
    assert second.brief.startswith("学习提醒：今天 119/120 分钟")
    assert third.brief.startswith("学习提醒：今天 0/120 分钟")
    assert second.key == f"{await member_id(conversation, '1002')}:reminder:study:2026-11-25"


async def test_reminders_follow_the_configured_default_time(
    chat: Chat, clock: FixedClock, database_url: str
) -> None:
    early = make_settings(database_url, reminder_time="18:00")
    clock.set(at(18, 0))

    assert await reminders(chat.conversation) == 0  # QIYI_REMINDER_TIME 20:30: not yet
    assert await reminders(chat.conversation, early) == 6


async def test_reminders_once_a_day_and_again_the_next_day(chat: Chat, clock: FixedClock) -> None:
    conversation = chat.conversation
    await chat.say("1003", "学习 120")  # at the goal today, not tomorrow

    clock.set(at(20, 30))
    assert await reminders(conversation) == 5
    clock.set(at(21, 55))
    assert await reminders(conversation) == 0  # the unique key: nothing twice a day
    assert await count(conversation, OutboxItem) == 5

    clock.set(at(20, 30, day=26))
    assert await reminders(conversation) == 6

    items = await outbox_items(conversation)
    assert [item.day for item in items] == [TODAY] * 5 + [TODAY + dt.timedelta(days=1)] * 6
    assert sorted(await roster_ids(conversation, items[5:])) == [
        "1001",
        "1002",
        "1003",
        "2001",
        "2002",
        "9001",
    ]


async def test_a_member_reachable_on_another_channel_is_reminded(
    chat: Chat, clock: FixedClock
) -> None:
    await unfollow(chat, "2001")
    await Chat(chat.conversation, channel="other").bind("2001")
    clock.set(at(20, 30))

    assert await reminders(chat.conversation) == 6
    assert "2001" in await roster_ids(chat.conversation, await outbox_items(chat.conversation))


async def test_members_without_any_binding_are_not_reminded(
    conversation: Conversation, clock: FixedClock
) -> None:
    clock.set(at(20, 30))

    assert await reminders(conversation) == 0
    assert await count(conversation, OutboxItem) == 0


# --- lessons and news --------------------------------------------------------------------

ARTICLE_CASES = [
    pytest.param(
        PushKind.LESSON,
        ArticleKind.LESSON,
        "弘扬志愿服务精神",
        "【今日微党课】",
        ("廉洁自律与中央八项规定精神", at(7, 30, day=30)),
        id="lesson",
    ),
    pytest.param(
        PushKind.NEWS,
        ArticleKind.NEWS,
        "厂安全技能竞赛圆满落幕",
        "【微资讯】",
        ("党员先锋队开展冬季管线防冻保温", at(12, 0, day=1, month=12)),
        id="news",
    ),
]


@pytest.mark.parametrize(("kind", "article_kind", "newest", "heading", "later"), ARTICLE_CASES)
async def test_article_push_goes_once_to_every_reachable_member(
    chat: Chat,
    clock: FixedClock,
    kind: PushKind,
    article_kind: ArticleKind,
    newest: str,
    heading: str,
    later: tuple[str, dt.datetime],
) -> None:
    conversation = chat.conversation
    await unfollow(chat, "2001")

    done = await article_push(conversation, kind)

    assert (done.kind, done.count, done.subject) == (kind, 5, newest)
    items = await outbox_items(conversation)
    assert await roster_ids(conversation, items) == ["1001", "1002", "1003", "2002", "9001"]
    published = await articles_of(conversation, article_kind)
    pushed = [a for a in published if a.title == newest]
    assert len(pushed) == 1
    for item in items:
        assert item.kind == kind.value
        assert item.text.startswith(f"{heading}{newest}")
        assert newest in item.brief
        assert item.key.endswith(f":{kind.value}:article:{pushed[0].id}:2026-11-25")
        assert item.due_at == MORNING
    # The newest and the older unpushed ones are marked; the one of later is not.
    later_title, later_publish = later
    assert [(a.title == later_title, a.pushed_at) for a in published] == [
        *[(False, MORNING)] * (len(published) - 1),
        (True, None),
    ]
    # The other kind is untouched.
    other = ArticleKind.NEWS if article_kind is ArticleKind.LESSON else ArticleKind.LESSON
    assert all(a.pushed_at is None for a in await articles_of(conversation, other))

    again = await article_push(conversation, kind)

    assert (again.count, again.subject) == (0, "")
    assert await count(conversation, OutboxItem) == 5

    clock.set(later_publish - dt.timedelta(minutes=1))
    assert (await article_push(conversation, kind)).count == 0

    clock.set(later_publish)
    done = await article_push(conversation, kind)

    assert (done.count, done.subject) == (5, later_title)
    newer = (await outbox_items(conversation))[5:]
    assert all(item.text.startswith(f"{heading}{later_title}") for item in newer)
    assert [item.day for item in newer] == [later_publish.date()] * 5
    assert all(a.pushed_at is not None for a in await articles_of(conversation, article_kind))


async def test_a_video_is_pushed_once_with_its_link_and_a_hidden_one_never(
    chat: Chat, clock: FixedClock
) -> None:
    conversation = chat.conversation
    async with transaction(conversation.sessions) as session:
        for slug, title, hidden in (("v1", "红色家书", False), ("v2", "未审定的片子", True)):
            session.add(
                Article(
                    slug=slug,
                    kind=ArticleKind.VIDEO.value,
                    title=title,
                    summary="三分钟读一封家书",
                    body="",
                    url=f"https://example.org/{slug}.mp4",
                    publish_at=at(8, 0) if hidden else at(7, 0),
                    hidden=hidden,
                )
            )

    done = await article_push(conversation, PushKind.VIDEO)

    assert (done.count, done.subject) == (6, "红色家书")
    items = await outbox_items(conversation)
    assert {item.kind for item in items} == {"video"}
    assert all(item.text.endswith("观看：https://example.org/v1.mp4") for item in items)
    assert all("回复“微视频”观看" in item.brief for item in items)
    again = await article_push(conversation, PushKind.VIDEO)
    assert again.count == 0  # pushed once; the hidden one is never pushed
    hidden = [a for a in await articles_of(conversation, ArticleKind.VIDEO) if a.hidden]
    assert [a.pushed_at for a in hidden] == [None]
    assert all(a.pushed_at is None for a in await articles_of(conversation, ArticleKind.NEWS))


async def test_nothing_published_means_nothing_pushed(chat: Chat, clock: FixedClock) -> None:
    clock.set(at(7, 0, day=1))  # before the first lesson (11-02) and news (11-03)

    lesson = await article_push(chat.conversation, PushKind.LESSON)
    news = await article_push(chat.conversation, PushKind.NEWS)

    assert (lesson.count, lesson.subject, news.count, news.subject) == (0, "", 0, "")
    assert await count(chat.conversation, OutboxItem) == 0


# --- quiet hours -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "due"),
    [
        pytest.param(at(23, 0), at(7, 0, day=26), id="23:00-next-morning"),
        pytest.param(at(22, 0), at(7, 0, day=26), id="22:00-start-is-quiet"),
        pytest.param(at(0, 30), at(7, 0), id="00:30-same-morning"),
        pytest.param(at(6, 59), at(7, 0), id="06:59-same-morning"),
        pytest.param(at(7, 0), at(7, 0), id="07:00-end-is-not-quiet"),
        pytest.param(at(12, 0), at(12, 0), id="12:00-now"),
        pytest.param(at(21, 59), at(21, 59), id="21:59-now"),
    ],
)
async def test_pushes_in_quiet_hours_wait_for_their_end(
    chat: Chat, clock: FixedClock, now: dt.datetime, due: dt.datetime
) -> None:
    clock.set(now)

    done = await article_push(chat.conversation, PushKind.LESSON)

    assert done.count == 6
    items = await outbox_items(chat.conversation)
    assert [item.due_at for item in items] == [due] * 6
    assert [item.day for item in items] == [now.date()] * 6  # deferred, keyed by today
    assert [item.state for item in items] == ["pending"] * 6  # never dropped


async def test_a_late_reminder_sweep_is_deferred_to_the_morning(
    chat: Chat, clock: FixedClock
) -> None:
    clock.set(at(23, 0))

    assert await reminders(chat.conversation) == 6

    items = await outbox_items(chat.conversation)
    assert [item.due_at for item in items] == [at(7, 0, day=26)] * 6
    assert [item.day for item in items] == [TODAY] * 6


async def test_empty_quiet_hours_defer_nothing(
    chat: Chat, clock: FixedClock, database_url: str
) -> None:
    settings = make_settings(database_url, quiet_hours="")
    assert settings.quiet is None
    clock.set(at(23, 0))

    assert (await article_push(chat.conversation, PushKind.LESSON, settings)).count == 6
    assert await reminders(chat.conversation, settings) == 6

    items = await outbox_items(chat.conversation)
    assert [item.due_at for item in items] == [at(23, 0)] * 12


@pytest.mark.parametrize(
    ("quiet", "now", "due"),
    [
        pytest.param("12:00-14:00", at(13, 0), at(14, 0), id="inside-non-wrapping"),
        pytest.param("12:00-14:00", at(14, 0), at(14, 0), id="end-of-non-wrapping"),
        pytest.param("12:00-14:00", at(23, 0), at(23, 0), id="outside-non-wrapping"),
        pytest.param("22:30-06:15", at(22, 45), at(6, 15, day=26), id="wrapping-evening"),
        pytest.param("22:30-06:15", at(6, 0), at(6, 15), id="wrapping-morning"),
        pytest.param("22:30-06:15", at(22, 15), at(22, 15), id="before-wrapping"),
    ],
)
def test_due_time_follows_the_configured_quiet_hours(
    quiet: str, now: dt.datetime, due: dt.datetime
) -> None:
    settings = make_settings("sqlite+aiosqlite:///unused.db", quiet_hours=quiet)

    assert pushes.due_time(settings, now) == due


@pytest.mark.parametrize(
    "value",
    ["25:00-07:00", "22:00", "07:00-07:00", "22:00-07:00-08:00", "ten-seven", "22:00-7"],
)
def test_parse_quiet_hours_rejects_bad_spans(value: str) -> None:
    with pytest.raises(ValueError):
        parse_quiet_hours(value)


@pytest.mark.parametrize("value", ["25:00-07:00", "22:00", "07:00-07:00"])
def test_a_bad_quiet_hours_setting_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="quiet_hours"):
        make_settings("sqlite+aiosqlite:///unused.db", quiet_hours=value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("22:00-07:00", QuietHours(dt.time(22, 0), dt.time(7, 0))),
        (" 12:30 - 14:00 ", QuietHours(dt.time(12, 30), dt.time(14, 0))),
        ("", None),
        ("   ", None),
    ],
)
def test_parse_quiet_hours_accepts_spans_and_empty(value: str, expected: QuietHours | None) -> None:
    assert parse_quiet_hours(value) == expected


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        (dt.time(21, 59, 59), False),
        (dt.time(22, 0), True),
        (dt.time(23, 59, 59), True),
        (dt.time(0, 0), True),
        (dt.time(6, 59, 59), True),
        (dt.time(7, 0), False),
        (dt.time(12, 0), False),
    ],
)
def test_wrapping_quiet_hours_contain_the_night(moment: dt.time, inside: bool) -> None:
    assert QuietHours(dt.time(22, 0), dt.time(7, 0)).contains(moment) is inside


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        (dt.time(11, 59, 59), False),
        (dt.time(12, 0), True),
        (dt.time(13, 59, 59), True),
        (dt.time(14, 0), False),
        (dt.time(0, 0), False),
        (dt.time(23, 0), False),
    ],
)
def test_non_wrapping_quiet_hours_contain_the_span(moment: dt.time, inside: bool) -> None:
    assert QuietHours(dt.time(12, 0), dt.time(14, 0)).contains(moment) is inside


def seconds_of(moment: dt.time) -> int:
    return moment.hour * 3600 + moment.minute * 60 + moment.second


minutes_of_day = st.builds(dt.time, st.integers(0, 23), st.integers(0, 59))
moments = st.times()


@given(start=minutes_of_day, end=minutes_of_day, moment=moments)
def test_contains_agrees_with_clock_arithmetic(
    start: dt.time, end: dt.time, moment: dt.time
) -> None:
    day = 24 * 3600
    # The span from start to end going forward round the clock (24 h when they are equal;
    # parse_quiet_hours refuses that, so only non-empty spans matter).
    length = (seconds_of(end) - seconds_of(start)) % day
    offset = (seconds_of(moment) - seconds_of(start)) % day
    if length == 0:
        return
    assert QuietHours(start, end).contains(moment) is (offset < length)


@given(
    start=minutes_of_day,
    end=minutes_of_day,
    now=st.datetimes(
        min_value=dt.datetime(2026, 1, 1),
        max_value=dt.datetime(2027, 12, 31),
        timezones=st.just(SHANGHAI),
    ),
)
def test_next_end_is_the_first_moment_outside(
    start: dt.time, end: dt.time, now: dt.datetime
) -> None:
    if start == end:
        return
    quiet = QuietHours(start, end)
    result = quiet.next_end(now)

    if not quiet.contains(now.time()):
        assert result == now
        return
    assert now < result <= now + dt.timedelta(days=1)
    assert result.timetz().replace(tzinfo=None) == end
    assert not quiet.contains(result.time())
    # Every whole minute between now and the end is quiet: nothing earlier was allowed.
    probe = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    while probe < result:
        assert quiet.contains(probe.time())
        probe += dt.timedelta(minutes=17)
