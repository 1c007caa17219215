"""The reminder before an activity reaches those still coming: a member who cancelled their
sign-up or asked for leave is not reminded (their queued reminder is skipped in the same
transaction), one who signs up again is; the others are — seen at the fake WeChat API when
the dispatcher runs at reminder time."""

# ruff: noqa: F401, F811 (the dispatcher tests' fixtures are imported and used by name)
from __future__ import annotations

import datetime as dt
import re

from sqlmodel import select

from bot.conversation import Conversation
from data.models import OutboxItem
from tests.conftest import SHANGHAI
from tests.test_dispatcher import (  # the rig's fixtures (fake, http, make_rig, rig) too
    Rig,
    bind_wechat,
    fake,
    http,
    make_rig,
    openid,
    rig,
    say_on_wechat,
    set_window,
)

START = dt.datetime(2026, 11, 26, 15, 0, tzinfo=SHANGHAI)
REMINDER_AT = START - dt.timedelta(hours=1)
PARTY_DAY = "活动 主题党日 11月26日 15:00 90分钟 三楼会议室 学习新修订的条例"
TRAINING = "活动 培训 11月26日 15:00 2小时 名额2 对象:全体 夜校教室 安全生产培训"
PEOPLE = ("1001", "1002", "1003", "2001", "2002", "9001")


async def publish(conversation: Conversation, roster_id: str, line: str) -> int:
    reply = await say_on_wechat(conversation, roster_id, line)
    found = re.search(r"编号 (\d+)", reply)
    assert found is not None, reply
    return int(found.group(1))


async def reminded_at_reminder_time(rig: Rig) -> set[str]:
    """Run the dispatcher when the reminders are due; the roster ids sent a reminder."""
    for roster_id in PEOPLE:
        await set_window(rig.conversation, roster_id, until=START + dt.timedelta(days=1))
    rig.fake.received.clear()
    rig.clock.set(REMINDER_AT)
    await rig.run()
    return {
        roster_id
        for roster_id in PEOPLE
        if any("即将开始" in text for text in rig.fake.sent_texts(openid(roster_id)))
    }


async def reminder_states(conversation: Conversation) -> list[str]:
    async with conversation.sessions() as session:
        statement = select(OutboxItem.state).where(OutboxItem.kind == "activity_reminder")
        return sorted(await session.exec(statement))


async def test_who_asked_for_leave_is_not_reminded(conversation: Conversation, rig: Rig) -> None:
    await bind_wechat(conversation, *PEOPLE)
    number = await publish(conversation, "1003", PARTY_DAY)
    assert "请假" in await say_on_wechat(conversation, "1001", f"请假 {number} 出差")

    assert await reminded_at_reminder_time(rig) == {"1002", "1003"}
    assert await reminder_states(conversation) == ["sent", "sent", "skipped"]


async def test_who_cancelled_is_not_reminded_and_who_moved_up_is(
    conversation: Conversation, rig: Rig
) -> None:
    await bind_wechat(conversation, *PEOPLE)
    number = await publish(conversation, "9001", TRAINING)
    for roster_id in ("1001", "1002", "2001"):  # two places: 2001 waits
        await say_on_wechat(conversation, roster_id, f"报名 {number}")
    assert "已取消" in await say_on_wechat(conversation, "1001", f"取消报名 {number}")

    assert await reminded_at_reminder_time(rig) == {"1002", "2001"}


async def test_who_signs_up_again_is_reminded_again(conversation: Conversation, rig: Rig) -> None:
    await bind_wechat(conversation, *PEOPLE)
    number = await publish(conversation, "9001", TRAINING)
    await say_on_wechat(conversation, "1001", f"报名 {number}")
    await say_on_wechat(conversation, "1001", f"取消报名 {number}")
    assert "报名成功" in await say_on_wechat(conversation, "1001", f"报名 {number}")

    assert await reminded_at_reminder_time(rig) == {"1001"}
