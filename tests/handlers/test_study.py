"""学习/打卡, 补卡 and 今日: recording study time, progress, points and streaks."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import col, select, update

from bot.conversation import Conversation
from data import points, study
from data.db import transaction
from data.models import Member, PointsEntry, StudyEntry
from tests.conftest import MORNING, SHANGHAI, Chat
from tests.queries import count, ledger, member_id

TODAY = MORNING.date()  # 2026-11-25
USAGE = "用法：学习 <时长> [备注]"


async def study_entries(conversation: Conversation, roster_id: str) -> list[StudyEntry]:
    mid = await member_id(conversation, roster_id)
    async with conversation.sessions() as session:
        statement = (
            select(StudyEntry).where(StudyEntry.member_id == mid).order_by(col(StudyEntry.id))
        )
        return list(await session.exec(statement))


async def minutes_on(conversation: Conversation, roster_id: str, day: dt.date) -> int:
    mid = await member_id(conversation, roster_id)
    async with conversation.sessions() as session:
        return await study.minutes_on(session, mid, day)


# --- recording -------------------------------------------------------------------------


async def test_check_in_records_and_replies(chat: Chat) -> None:
    reply = await chat.say("1001", "学习 30")

    assert "已记录 30 分钟" in reply
    assert "今日累计：30/120 分钟" in reply
    assert "还差 90 分钟达标" in reply
    assert "连续达标：0 天" in reply
    assert "本次积分：+1" in reply
    entries = await study_entries(chat.conversation, "1001")
    assert [(e.day, e.minutes, e.note) for e in entries] == [(TODAY, 30, "")]


async def test_totals_accumulate_and_goal_is_reported(chat: Chat) -> None:
    await chat.say("1001", "学习 30")
    reply = await chat.say("1001", "学习 1.5小时")

    assert "已记录 90 分钟" in reply
    assert "今日累计：120/120 分钟" in reply
    assert "已达成每日学习目标！" in reply
    assert "连续达标：1 天" in reply
    assert await minutes_on(chat.conversation, "1001", TODAY) == 120


async def test_other_members_are_not_affected(chat: Chat) -> None:
    await chat.say("1001", "学习 60")
    reply = await chat.say("1002", "学习 30")

    assert "今日累计：30/120 分钟" in reply
    assert await minutes_on(chat.conversation, "1002", TODAY) == 30
    assert await minutes_on(chat.conversation, "1001", TODAY) == 60


async def test_check_in_alias_keeps_the_note(chat: Chat) -> None:
    reply = await chat.say("1001", "打卡 45 读《党章》")

    assert "已记录 45 分钟" in reply
    entries = await study_entries(chat.conversation, "1001")
    assert [(e.minutes, e.note) for e in entries] == [(45, "读《党章》")]


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("/学习 30", 30),
        ("／学习 30", 30),
        ("学习：30", 30),
        ("学习:30", 30),
        ("学习\u300030", 30),
        ("学习三十分钟", 30),
        ("学习半小时", 30),
        ("打卡１２０", 120),
        ("  学习 一个半小时  ", 90),
    ],
)
async def test_spellings_of_the_command(chat: Chat, text: str, minutes: int) -> None:
    reply = await chat.say("1001", text)

    assert f"已记录 {minutes} 分钟" in reply
    assert await minutes_on(chat.conversation, "1001", TODAY) == minutes


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("学习 0", "你写的是 0 分钟"),
        ("学习 241", "你写的是 241 分钟"),
        ("学习 5小时", "你写的是 300 分钟"),
        ("学习 abc", "没看懂学习时长"),
        ("学习", "没看懂学习时长"),
        ("学习 -3", "没看懂学习时长"),
    ],
)
async def test_bad_amounts_give_usage_and_write_nothing(chat: Chat, text: str, hint: str) -> None:
    reply = await chat.say("1001", text)

    assert USAGE in reply
    assert hint in reply
    assert await count(chat.conversation, StudyEntry) == 0
    assert await count(chat.conversation, PointsEntry) == 0


async def test_bounds_are_inclusive(chat: Chat) -> None:
    assert "已记录 1 分钟" in await chat.say("1001", "学习 1")
    assert "已记录 240 分钟" in await chat.say("1001", "学习 240")
    assert await count(chat.conversation, StudyEntry) == 2


async def test_more_than_a_day_is_refused(chat: Chat) -> None:
    for _ in range(6):
        assert "已记录 240 分钟" in await chat.say("1001", "学习 240")
    assert await minutes_on(chat.conversation, "1001", TODAY) == 24 * 60

    reply = await chat.say("1001", "学习 1")

    assert USAGE in reply
    assert "这一天已记录 1440 分钟" in reply
    assert await count(chat.conversation, StudyEntry) == 6
    assert await minutes_on(chat.conversation, "1001", TODAY) == 24 * 60


async def test_a_day_can_be_filled_exactly(chat: Chat) -> None:
    for _ in range(5):
        await chat.say("1001", "学习 240")
    reply = await chat.say("1001", "学习 240")
    assert "今日累计：1440/120 分钟" in reply
    assert await count(chat.conversation, StudyEntry) == 6


# --- 今日 / 进度 --------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["今日", "进度", "/今日"])
async def test_progress_before_and_after(chat: Chat, word: str) -> None:
    reply = await chat.say("1001", word)
    assert "今日学习：0/120 分钟" in reply
    assert "还差 120 分钟达标" in reply

    await chat.say("1001", "学习 50")
    reply = await chat.say("1001", word)
    assert "今日学习：50/120 分钟" in reply
    assert "还差 70 分钟达标" in reply
    assert "连续达标：0 天" in reply

    await chat.say("1001", "学习 70")
    reply = await chat.say("1001", word)
    assert "今日学习：120/120 分钟" in reply
    assert "今日已达标！" in reply
    assert "连续达标：1 天" in reply
    # Asking changes nothing.
    assert await count(chat.conversation, StudyEntry) == 2


# --- points -------------------------------------------------------------------------------


async def test_study_points_capped_and_goal_bonus_once(chat: Chat) -> None:
    gained = []
    for _ in range(4):
        reply = await chat.say("1001", "学习 30")
        gained.append(reply)
    assert "本次积分：+1" in gained[0]
    assert "本次积分：+1" in gained[1]
    assert "本次积分：+1" in gained[2]
    assert "本次积分：+3" in gained[3]  # the fourth block and the goal bonus

    # More study the same day: the cap is reached and the goal was paid already.
    for _ in range(3):
        assert "本次积分：+0" in await chat.say("1001", "学习 30")

    rows = await ledger(chat.conversation, "1001")
    by_source: dict[str, int] = {}
    for row in rows:
        by_source[row.source] = by_source.get(row.source, 0) + row.points
    assert by_source == {"study": 4, "goal": 2}
    assert [row.source for row in rows].count("goal") == 1
    mid = await member_id(chat.conversation, "1001")
    async with chat.conversation.sessions() as session:
        assert (await points.card(session, mid, since=MORNING.date())).total == 6


async def test_points_follow_the_rules_file(chat: Chat) -> None:
    rules = chat.conversation.rules.points
    for _ in range(8):
        await chat.say("1001", "学习 30")
    rows = await ledger(chat.conversation, "1001")
    study_points = sum(r.points for r in rows if r.source == "study")
    goal_points = sum(r.points for r in rows if r.source == "goal")
    assert study_points == rules.study_daily_cap
    assert goal_points == rules.goal_bonus


# --- streaks ------------------------------------------------------------------------------


async def test_seven_days_at_goal_earn_the_streak_bonus_once(chat: Chat) -> None:
    clock = chat.conversation.clock
    replies = []
    for offset in range(7):
        clock.set(MORNING + dt.timedelta(days=offset))
        replies.append(await chat.say("1001", "学习 120"))

    for offset, reply in enumerate(replies):
        assert f"连续达标：{offset + 1} 天" in reply
    assert "连续达标：7 天" in replies[6]
    assert "本次积分：+6" in replies[5]
    assert "本次积分：+11" in replies[6]  # 4 study + 2 goal + 5 streak

    # More study on the 7th day does not pay the streak again.
    assert "本次积分：+0" in await chat.say("1001", "学习 30")
    # The 8th day continues the streak without a bonus.
    clock.set(MORNING + dt.timedelta(days=7))
    reply = await chat.say("1001", "学习 120")
    assert "连续达标：8 天" in reply
    assert "本次积分：+6" in reply

    streak_rows = [r for r in await ledger(chat.conversation, "1001") if r.source == "streak"]
    assert [(r.points, r.day) for r in streak_rows] == [(5, TODAY + dt.timedelta(days=6))]
    assert "连续达标：8 天" in await chat.say("1001", "今日")


async def test_a_short_day_breaks_the_streak(chat: Chat) -> None:
    clock = chat.conversation.clock
    for offset in range(3):
        clock.set(MORNING + dt.timedelta(days=offset))
        await chat.say("1001", "学习 120")
    clock.set(MORNING + dt.timedelta(days=3))
    await chat.say("1001", "学习 30")  # short of the goal
    clock.set(MORNING + dt.timedelta(days=4))
    assert "连续达标：0 天" in await chat.say("1001", "今日")
    reply = await chat.say("1001", "学习 120")
    assert "连续达标：1 天" in reply


async def test_progress_shows_yesterdays_streak_before_today_is_done(chat: Chat) -> None:
    clock = chat.conversation.clock
    for offset in range(2):
        clock.set(MORNING + dt.timedelta(days=offset))
        await chat.say("1001", "学习 120")
    clock.set(MORNING + dt.timedelta(days=2))
    assert "连续达标：2 天" in await chat.say("1001", "今日")


# --- days are Shanghai days ---------------------------------------------------------------


async def test_minutes_before_and_after_local_midnight_are_two_days(chat: Chat) -> None:
    clock = chat.conversation.clock
    clock.set(dt.datetime(2026, 11, 25, 23, 50, tzinfo=SHANGHAI))
    await chat.say("1001", "学习 30")
    clock.set(dt.datetime(2026, 11, 26, 0, 10, tzinfo=SHANGHAI))
    reply = await chat.say("1001", "学习 30")

    assert "今日累计：30/120 分钟" in reply
    entries = await study_entries(chat.conversation, "1001")
    assert [e.day for e in entries] == [dt.date(2026, 11, 25), dt.date(2026, 11, 26)]
    assert "今日学习：30/120 分钟" in await chat.say("1001", "今日")


async def test_the_day_is_the_shanghai_day_not_the_utc_day(chat: Chat) -> None:
    clock = chat.conversation.clock
    # 07:30 in Shanghai on the 26th is still the 25th in UTC.
    clock.set(dt.datetime(2026, 11, 25, 23, 30, tzinfo=dt.UTC))
    await chat.say("1001", "学习 30")
    # 23:59 in Shanghai on the 25th is 15:59 UTC on the 25th.
    clock.set(dt.datetime(2026, 11, 25, 15, 59, tzinfo=dt.UTC))
    await chat.say("1002", "学习 30")

    assert [e.day for e in await study_entries(chat.conversation, "1001")] == [
        dt.date(2026, 11, 26)
    ]
    assert [e.day for e in await study_entries(chat.conversation, "1002")] == [
        dt.date(2026, 11, 25)
    ]
    rows = await ledger(chat.conversation, "1001")
    assert [r.day for r in rows] == [dt.date(2026, 11, 26)]


# --- 补卡 ---------------------------------------------------------------------------------


@pytest.fixture
async def members_since_october(chat: Chat) -> Chat:
    """The roster was imported at the fixture's clock (the 25th): 补卡 is for days the members
    belonged (tests/robustness/test_heavy_replies_chat.py), so they joined earlier here."""
    async with transaction(chat.conversation.sessions) as session:
        october = dt.datetime(2026, 10, 1, tzinfo=SHANGHAI)
        await session.exec(update(Member).values(joined_at=october))
    return chat


async def test_backfill_before_noon_records_yesterday(members_since_october: Chat) -> None:
    chat = members_since_october
    yesterday = TODAY - dt.timedelta(days=1)
    chat.conversation.clock.set(dt.datetime(2026, 11, 25, 11, 59, tzinfo=SHANGHAI))
    reply = await chat.say("1001", "补卡 2小时")

    assert "已为昨天（11月24日）补记 120 分钟" in reply
    assert "昨天累计：120/120 分钟" in reply
    assert "连续达标：1 天" in reply
    entries = await study_entries(chat.conversation, "1001")
    assert [(e.day, e.minutes) for e in entries] == [(yesterday, 120)]
    assert {r.day for r in await ledger(chat.conversation, "1001")} == {yesterday}
    # Today is untouched, and the streak counts yesterday.
    today = await chat.say("1001", "今日")
    assert "今日学习：0/120 分钟" in today
    assert "连续达标：1 天" in today


@pytest.mark.parametrize("at", [(12, 0), (18, 30)])
async def test_backfill_after_noon_is_refused(chat: Chat, at: tuple[int, int]) -> None:
    chat.conversation.clock.set(dt.datetime(2026, 11, 25, *at, tzinfo=SHANGHAI))
    reply = await chat.say("1001", "补卡 30")

    assert "补卡只能在当天 12 点前补记昨天的学习" in reply
    assert await count(chat.conversation, StudyEntry) == 0
    assert await count(chat.conversation, PointsEntry) == 0


async def test_backfill_bad_amount_gives_usage(chat: Chat) -> None:
    reply = await chat.say("1001", "补卡 300")
    assert "用法：补卡 <时长> [备注]" in reply
    assert await count(chat.conversation, StudyEntry) == 0


async def test_backfill_completes_a_streak(members_since_october: Chat) -> None:
    chat = members_since_october
    clock = chat.conversation.clock
    clock.set(MORNING - dt.timedelta(days=2))
    await chat.say("1001", "学习 120")
    # The 24th was forgotten; on the morning of the 25th it is backfilled.
    clock.set(MORNING)
    reply = await chat.say("1001", "补卡 120")
    assert "连续达标：2 天" in reply
    reply = await chat.say("1001", "学习 120")
    assert "连续达标：3 天" in reply


async def test_backfill_that_completes_seven_days_through_today_pays_the_streak(
    members_since_october: Chat,
) -> None:
    """The 19th–23rd and today at goal, the 24th forgotten and backfilled this morning:
    the 19th–25th are seven consecutive days at goal, which earns the streak bonus."""
    chat = members_since_october
    clock = chat.conversation.clock
    for offset in range(-6, -1):
        clock.set(MORNING + dt.timedelta(days=offset))
        await chat.say("1001", "学习 120")
    clock.set(MORNING)
    assert "连续达标：1 天" in await chat.say("1001", "学习 120")

    await chat.say("1001", "补卡 120")

    assert "连续达标：7 天" in await chat.say("1001", "今日")
    streak_rows = [r for r in await ledger(chat.conversation, "1001") if r.source == "streak"]
    assert [r.points for r in streak_rows] == [chat.conversation.rules.points.streak_bonus]


async def test_the_note_is_kept_as_typed(chat: Chat) -> None:
    await chat.say("1001", "学习 45 读《党章》第三章，很有收获！")
    entries = await study_entries(chat.conversation, "1001")
    assert [e.note for e in entries] == ["读《党章》第三章，很有收获！"]


# --- retries ------------------------------------------------------------------------------


async def test_the_same_message_twice_is_recorded_once(chat: Chat) -> None:
    first = await chat.say("1001", "学习 30", key="m1")
    second = await chat.say("1001", "学习 30", key="m1")

    assert second == first
    assert "已记录 30 分钟" in first
    assert await count(chat.conversation, StudyEntry) == 1
    assert await minutes_on(chat.conversation, "1001", TODAY) == 30
    assert sum(r.points for r in await ledger(chat.conversation, "1001")) == 1

    # A new message id is a new entry.
    await chat.say("1001", "学习 30", key="m2")
    assert await count(chat.conversation, StudyEntry) == 2


async def test_the_same_key_after_a_refusal_stays_refused(chat: Chat) -> None:
    first = await chat.say("1001", "学习 0", key="bad")
    second = await chat.say("1001", "学习 0", key="bad")
    assert first == second
    assert USAGE in second
    assert await count(chat.conversation, StudyEntry) == 0
