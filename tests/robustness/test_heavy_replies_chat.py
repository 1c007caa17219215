"""The chat's rough edges: ties share a place in `排行` and `我的月报`, `排行` without points
says so, `我的月报`'s average is per day studied, `补卡` is not for a day before the member
joined, and the listings of `审核` and `资料` stay one page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, update
from sqlalchemy.engine import Engine

from bot.messages import Inbound, InboundKind, Media
from data.db import transaction
from data.models import Member, PointsEntry, StudyEntry, VolunteerEntry
from tests.conftest import MORNING, SHANGHAI, Chat
from tests.queries import count

UTC = dt.UTC


async def test_equal_points_share_a_place_in_the_ranking(chat: Chat) -> None:
    await chat.say("1001", "学习 60")  # 2 points
    await chat.say("1002", "学习 60")  # 2 points
    await chat.say("1003", "学习 30")  # 1 point

    reply = await chat.say("1001", "排行")

    assert "1. 张三 2分\n1. 李四 2分\n3. 王芳 1分" in reply


async def test_equal_branch_scores_share_a_place_in_the_ranking(chat: Chat) -> None:
    # Everyone of 第一 and 第二党支部 at the goal today (they joined today): equal scores.
    for roster_id in ("1001", "1002", "1003", "2001", "2002"):
        await chat.say(roster_id, "学习 120")

    reply = await chat.say("1001", "排行")

    branches = reply[reply.index("支部评分排名：") :]
    assert "1. 第一党支部" in branches and "1. 第二党支部" in branches
    assert "3. 机关党支部 0.0分" in branches
    assert "第一党支部位列第 1/3。" in reply


async def test_equal_points_share_a_place_in_my_report(chat: Chat) -> None:
    await chat.say("1001", "学习 60")
    await chat.say("1002", "学习 60")
    await chat.say("1003", "学习 30")

    assert "积分：2，支部第 1/3 名" in await chat.say("1001", "我的月报")
    assert "积分：2，支部第 1/3 名" in await chat.say("1002", "我的月报")
    assert "积分：1，支部第 3/3 名" in await chat.say("1003", "我的月报")


async def test_ranking_without_points_says_so(chat: Chat) -> None:
    reply = await chat.say("1001", "排行")
    assert "第一党支部本月还没有人获得积分。" in reply
    assert "前0名" not in reply


async def test_my_report_averages_per_day_studied(chat: Chat) -> None:
    async with transaction(chat.conversation.sessions) as session:
        await session.exec(update(Member).values(joined_at=dt.datetime(2026, 1, 1, tzinfo=UTC)))
    clock = chat.conversation.clock
    for day, minutes in ((2, 30), (9, 120), (16, 90)):
        clock.set(dt.datetime(2026, 11, day, 20, 0, tzinfo=SHANGHAI))
        await chat.say("1001", f"学习 {minutes}")
    clock.set(MORNING)

    reply = await chat.say("1001", "我的月报")

    # 240 minutes on 3 days studied: 80 a day studied (the month's 25 days would say 10).
    assert "学习：4 小时，3 天，学习的日子平均每天 80 分钟" in reply


# --- 补卡 before joining ------------------------------------------------------------------


async def joined_at(chat: Chat, moment: dt.datetime) -> None:
    async with transaction(chat.conversation.sessions) as session:
        await session.exec(update(Member).values(joined_at=moment))


async def test_backfill_for_a_day_before_joining_is_refused(chat: Chat) -> None:
    # The roster was imported this morning (the 25th, 09:00): yesterday was before joining.
    chat.conversation.clock.set(MORNING + dt.timedelta(hours=1))
    reply = await chat.say("1001", "补卡 60")

    assert reply == "你从 11月25日 起加入，不能补卡加入之前的学习。今天的学习请发送“学习 分钟数”。"
    assert await count(chat.conversation, StudyEntry) == 0
    assert await count(chat.conversation, PointsEntry) == 0


@pytest.mark.parametrize(
    ("joined_utc", "allowed"),
    [
        # 23:30 on the 24th in Shanghai: a member on the 24th, which can be backfilled.
        (dt.datetime(2026, 11, 24, 15, 30, tzinfo=UTC), True),
        # 00:30 on the 25th in Shanghai (still the 24th in UTC): not a member on the 24th.
        (dt.datetime(2026, 11, 24, 16, 30, tzinfo=UTC), False),
    ],
)
async def test_joining_day_is_the_configured_zone_s(
    chat: Chat, joined_utc: dt.datetime, allowed: bool
) -> None:
    await joined_at(chat, joined_utc)
    reply = await chat.say("1001", "补卡 60")
    assert ("已为昨天（11月24日）补记 60 分钟" in reply) is allowed
    assert await count(chat.conversation, StudyEntry) == (1 if allowed else 0)


# --- one page, however many wait ---------------------------------------------------------


@pytest.fixture
def statements() -> Iterator[list[str]]:
    found: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        found.append(" ".join(sql.split()).lower())

    event.listen(Engine, "before_cursor_execute", record)
    yield found
    event.remove(Engine, "before_cursor_execute", record)


async def test_review_lists_one_page_and_counts_the_rest(chat: Chat, statements: list[str]) -> None:
    for hours in range(25):
        await chat.say("1001", f"志愿 {1 + hours % 4} 社区服务")
    assert await count(chat.conversation, VolunteerEntry) == 25

    statements.clear()
    reply = await chat.say("1003", "审核")

    assert "待审核志愿服务 25 条（显示最早的 20 条）" in reply
    assert reply.count("社区服务") == 20
    listing = [sql for sql in statements if "from volunteerentry" in sql and "count(" not in sql]
    assert listing and all(" limit " in sql for sql in listing)  # not every pending row


async def test_materials_list_one_page_and_count_the_rest(chat: Chat) -> None:
    for number in range(25):
        inbound = Inbound(
            chat.sender("1003"),
            f"media-{number}",
            InboundKind.MEDIA,
            chat.conversation.clock.now(),
            "",
            media=(Media("image", f"picture-{number}"),),
        )
        await chat.conversation.respond(inbound)

    reply = await chat.say("1003", "资料")

    assert "本支部11月资料 25 份（显示最早的 20 份）" in reply
    assert "20. 11/25 图片" in reply and "21. " not in reply
