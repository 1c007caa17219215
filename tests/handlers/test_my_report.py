"""`我的月报`: the member's month so far, from the same figures as the branch scores."""

from __future__ import annotations

import datetime as dt

from sqlmodel import update

from data.db import transaction
from data.models import Member
from tests.conftest import MORNING, SHANGHAI, Chat


async def joined_in_january(chat: Chat) -> None:
    """The roster was imported at the fixture's clock (the 25th); make it the start of the year."""
    async with transaction(chat.conversation.sessions) as session:
        january = dt.datetime(2026, 1, 1, tzinfo=SHANGHAI)
        await session.exec(update(Member).values(joined_at=january))


async def test_my_month_so_far(chat: Chat) -> None:
    await joined_in_january(chat)
    clock = chat.conversation.clock
    for day, minutes in ((21, 120), (22, 120), (23, 30), (24, 120)):
        clock.set(dt.datetime(2026, 11, day, 9, 0, tzinfo=SHANGHAI))
        await chat.say("1001", f"学习 {minutes}")
    clock.set(dt.datetime(2026, 10, 31, 9, 0, tzinfo=SHANGHAI))
    await chat.say("1001", "学习 120")  # October: not this month
    clock.set(dt.datetime(2026, 11, 25, 9, 0, tzinfo=SHANGHAI))
    entry = await chat.say("1001", "志愿 2 陪社区老人体检")
    entry_id = entry.split("编号 ")[1].split("）")[0]
    await chat.say("1003", f"通过 {entry_id}")
    await chat.say("1001", "笔记 " + "悟" * 800)

    reply = await chat.say("1001", "我的月报")

    assert "【张三的11月月报】（截至25日）" in reply
    # 390 minutes on 4 days studied; goal days 21, 22, 24 (longest run: 2).
    assert "学习：6.5 小时，4 天，学习的日子平均每天 98 分钟" in reply
    assert "达标：3 天，最长连续 2 天" in reply
    assert "志愿服务：2 小时（已审核）" in reply
    assert "笔记：800 字，“周写一文” 1 周" in reply
    # Points: study 4+4+1+4, goal 2×3, volunteer 4, note 1 + article 5 = 29.
    assert "积分：29，支部第 1/3 名（名次截至 09:00）" in reply


async def test_my_month_with_nothing_yet(chat: Chat) -> None:
    await joined_in_january(chat)
    reply = await chat.say("1002", "月报")
    assert "学习：0 小时，0 天\n" in reply  # no average of no days
    assert "积分：0，支部第 1/3 名" in reply


async def test_the_average_is_per_day_studied(chat: Chat) -> None:
    await joined_in_january(chat)
    clock = chat.conversation.clock
    for day, minutes in ((3, 60), (10, 90)):
        clock.set(dt.datetime(2026, 11, day, 9, 0, tzinfo=SHANGHAI))
        await chat.say("1001", f"学习 {minutes}")
    clock.set(MORNING)
    # 150 minutes on 2 of the month's 25 days: 75 a day studied (not 6 a day of the month).
    assert "学习：2.5 小时，2 天，学习的日子平均每天 75 分钟" in await chat.say("1001", "我的月报")
