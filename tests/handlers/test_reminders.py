"""`提醒`: showing, turning off and on, and setting the member's own evening reminder time."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from bot import pushes
from bot.clock import FixedClock
from bot.conversation import Conversation
from data.db import transaction
from data.models import Member, OutboxItem
from tests.conftest import SHANGHAI, Chat
from tests.queries import member_id

USAGE = "用法：提醒 [开启|关闭|时间]"
FORMAT_HINT = "可以写：提醒 开启、提醒 关闭、提醒 21:00。"
QUIET_HINT = "22:00-07:00 是免打扰时间，请选这之外的时间。"


async def reminder_of(conversation: Conversation, roster_id: str) -> tuple[bool, dt.time | None]:
    """(reminders on, own time) as stored for the member."""
    mid = await member_id(conversation, roster_id)
    async with conversation.sessions() as session:
        member = (await session.exec(select(Member).where(Member.id == mid))).one()
        return member.reminder_enabled, member.reminder_time


async def test_show_gives_the_default_time_and_on(chat: Chat) -> None:
    reply = await chat.say("1001", "提醒")

    assert reply.startswith("每晚 20:30 提醒你学习")
    assert "已设置" not in reply
    assert "关闭请发送“提醒 关闭”" in reply
    assert await reminder_of(chat.conversation, "1001") == (True, None)


async def test_turn_off_then_on(chat: Chat) -> None:
    off = await chat.say("1001", "提醒 关闭")

    assert off.startswith("已关闭每晚学习提醒")
    assert await reminder_of(chat.conversation, "1001") == (False, None)
    shown = await chat.say("1001", "提醒")
    assert shown.startswith("当前已关闭每晚学习提醒")
    assert await reminder_of(chat.conversation, "1002") == (True, None)  # only 1001

    on = await chat.say("1001", "提醒 开启")

    assert on.startswith("已设置：每晚 20:30 提醒你学习")
    assert await reminder_of(chat.conversation, "1001") == (True, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("提醒 21:00", dt.time(21, 0), id="hh:mm"),
        pytest.param("提醒 ２１：３０", dt.time(21, 30), id="full-width"),
        pytest.param("提醒 21点", dt.time(21, 0), id="21点"),
        pytest.param("提醒 19点45", dt.time(19, 45), id="19点45"),
        pytest.param("/提醒：20:05", dt.time(20, 5), id="slash-and-colon"),
        pytest.param("提醒 7:00", dt.time(7, 0), id="end-of-quiet-hours"),
    ],
)
async def test_set_own_time(chat: Chat, text: str, expected: dt.time) -> None:
    reply = await chat.say("1001", text)

    assert reply.startswith(f"已设置：每晚 {expected:%H:%M} 提醒你学习")
    assert await reminder_of(chat.conversation, "1001") == (True, expected)
    assert (await chat.say("1001", "提醒")).startswith(f"每晚 {expected:%H:%M} 提醒你学习")


async def test_spoken_evening_time_is_the_evening(chat: Chat) -> None:
    # The evening reminder set by voice: "九点半" said for it means 21:30 (the README's own
    # example); "每晚 09:30" would remind the member every morning instead.
    reply = await chat.say("1001", "提醒 九点半")

    assert reply.startswith("已设置：每晚 21:30 提醒你学习")
    assert await reminder_of(chat.conversation, "1001") == (True, dt.time(21, 30))


async def test_setting_a_time_turns_reminders_back_on(chat: Chat) -> None:
    await chat.say("1001", "提醒 关闭")

    await chat.say("1001", "提醒 21:15")

    assert await reminder_of(chat.conversation, "1001") == (True, dt.time(21, 15))


@pytest.mark.parametrize("text", ["提醒 23:00", "提醒 22:00", "提醒 6:59", "提醒 零点"])
async def test_time_inside_quiet_hours_is_refused_and_changes_nothing(
    chat: Chat, text: str
) -> None:
    await chat.say("1001", "提醒 21:00")
    await chat.say("1001", "提醒 关闭")

    reply = await chat.say("1001", text)

    assert QUIET_HINT in reply
    assert USAGE in reply
    assert "已设置" not in reply
    assert await reminder_of(chat.conversation, "1001") == (False, dt.time(21, 0))


@pytest.mark.parametrize("text", ["提醒 abc", "提醒 25:00", "提醒 21:60", "提醒 明天"])
async def test_bad_input_gives_the_usage_and_changes_nothing(chat: Chat, text: str) -> None:
    await chat.say("1001", "提醒 20:45")

    reply = await chat.say("1001", text)

    assert FORMAT_HINT in reply
    assert USAGE in reply
    assert await reminder_of(chat.conversation, "1001") == (True, dt.time(20, 45))


async def test_turned_off_member_is_not_reminded(chat: Chat, clock: FixedClock) -> None:
    await chat.say("1001", "提醒 关闭")
    clock.set(dt.datetime(2026, 11, 25, 20, 30, tzinfo=SHANGHAI))

    async with transaction(chat.conversation.sessions) as session:
        done = await pushes.enqueue_reminders(session, chat.conversation.settings, clock)

    assert done.count == 5
    off = await member_id(chat.conversation, "1001")
    async with chat.conversation.sessions() as session:
        reminded = set(await session.exec(select(OutboxItem.member_id)))
    assert len(reminded) == 5
    assert off not in reminded


async def test_own_time_is_when_the_member_is_reminded(chat: Chat, clock: FixedClock) -> None:
    await chat.say("1001", "提醒 21:00")

    async def sweep(hour: int, minute: int) -> int:
        clock.set(dt.datetime(2026, 11, 25, hour, minute, tzinfo=SHANGHAI))
        async with transaction(chat.conversation.sessions) as session:
            done = await pushes.enqueue_reminders(session, chat.conversation.settings, clock)
        return done.count

    assert await sweep(20, 30) == 5  # everyone else at the default time
    assert await sweep(20, 55) == 0
    assert await sweep(21, 0) == 1  # 1001 at their own time


async def test_help_lists_the_reminder_command(chat: Chat) -> None:
    reply = await chat.say("1001", "帮助")

    assert (
        "· 提醒 [开启|关闭|时间] — 每晚学习提醒：查看、开启、关闭或改时间，如：提醒 21:00" in reply
    )
