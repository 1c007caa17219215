"""积分, 笔记, 排行, 帮助 and unknown texts."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.conversation import Conversation
from bot.messages import fits
from data import members, points
from data.models import Note, PointsEntry, Role
from handlers import router
from tests.conftest import MORNING, SHANGHAI, Chat
from tests.queries import count, ledger, member_id

MONDAY_NEXT_WEEK = dt.datetime(2026, 11, 30, 9, 0, tzinfo=SHANGHAI)


async def by_source(conversation: Conversation, roster_id: str) -> dict[str, int]:
    totals: dict[str, int] = {}
    for row in await ledger(conversation, roster_id):
        totals[row.source] = totals.get(row.source, 0) + row.points
    return totals


# --- 积分 ----------------------------------------------------------------------------------


async def test_points_card_without_points(chat: Chat) -> None:
    reply = await chat.say("1001", "积分")
    assert "【张三的积分卡】" in reply
    assert "累计积分：0" in reply
    assert "本月积分：0" in reply
    assert "还没有积分" in reply


async def test_points_card_equals_the_ledger(chat: Chat) -> None:
    conversation = chat.conversation
    # Last month: 60 minutes of study earn 2 points on 10-30.
    conversation.clock.set(dt.datetime(2026, 10, 30, 9, 0, tzinfo=SHANGHAI))
    await chat.say("1001", "学习 60")
    # This month: study to the goal (4 + 2), a note (1) and the quiz (2).
    conversation.clock.set(MORNING)
    await chat.say("1001", "学习 120")
    await chat.say("1001", "笔记 " + "学" * 120)
    await chat.say("1001", "微党课")
    await chat.say("1001", "答 A")

    reply = await chat.say("1001", "积分")

    rows = await ledger(conversation, "1001")
    total = sum(row.points for row in rows)
    month = sum(row.points for row in rows if row.day >= MORNING.date().replace(day=1))
    assert (total, month) == (11, 9)
    assert f"累计积分：{total}" in reply
    assert f"本月积分：{month}" in reply
    assert "积分来源：" in reply
    for line in ("· 学习：6", "· 每日达标：2", "· 答题：2", "· 学习笔记：1"):
        assert line in reply
    assert "志愿服务" not in reply
    # The largest source comes first.
    assert reply.index("· 学习：6") < reply.index("· 答题：2") < reply.index("· 学习笔记：1")
    expected_sources = await by_source(conversation, "1001")
    mid = await member_id(conversation, "1001")
    async with conversation.sessions() as session:
        card = await points.card(session, mid, since=MORNING.date().replace(day=1))
    assert (card.total, card.since, card.sources) == (total, month, expected_sources)


async def test_points_card_is_per_member(chat: Chat) -> None:
    await chat.say("1001", "学习 120")
    reply = await chat.say("1002", "积分")
    assert "【李四的积分卡】" in reply
    assert "累计积分：0" in reply


async def test_ledger_rows_are_appended_never_updated(chat: Chat) -> None:
    conversation = chat.conversation
    await chat.say("1001", "学习 30")
    first = [
        (r.id, r.points, r.source, r.ref, r.created_at) for r in await ledger(conversation, "1001")
    ]
    assert [(p, s) for _, p, s, _, _ in first] == [(1, "study")]

    conversation.clock.advance(hours=1)
    await chat.say("1001", "学习 60")
    conversation.clock.advance(hours=1)
    await chat.say("1001", "学习 30")
    rows = await ledger(conversation, "1001")

    # The first row is untouched; each later award is a new row of its own.
    assert [(r.id, r.points, r.source, r.ref, r.created_at) for r in rows[:1]] == first
    assert [(r.source, r.points) for r in rows] == [
        ("study", 1),
        ("study", 2),
        ("study", 1),
        ("goal", 2),
    ]
    assert len({r.ref for r in rows}) == len(rows)
    assert rows[1].created_at > rows[0].created_at


async def test_reading_the_card_writes_nothing(chat: Chat) -> None:
    await chat.say("1001", "学习 60")
    before = await count(chat.conversation, PointsEntry)
    await chat.say("1001", "积分")
    await chat.say("1001", "积分")
    assert await count(chat.conversation, PointsEntry) == before


# --- 笔记 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["笔记", "笔记 好", "笔记 学习党章", "笔记   四个字啊   "])
async def test_short_note_gives_usage(chat: Chat, text: str) -> None:
    reply = await chat.say("1001", text)
    assert "用法：笔记 <学习心得>" in reply
    assert "笔记至少 5 个字" in reply
    assert await count(chat.conversation, Note) == 0


async def test_too_long_note_gives_usage(chat: Chat) -> None:
    reply = await chat.say("1001", "笔记 " + "长" * 5001)
    assert "笔记最多 5000 字" in reply
    assert await count(chat.conversation, Note) == 0


async def test_short_note_is_saved_without_points(chat: Chat) -> None:
    reply = await chat.say("1001", "笔记 今天学习了党章第三条")
    assert "笔记已保存（10 字），本周累计 10 字" in reply
    assert "写一篇 800 字以上的笔记，即完成本周“写一文”" in reply
    assert "积分 +" not in reply
    assert await count(chat.conversation, Note) == 1
    assert await count(chat.conversation, PointsEntry) == 0


async def test_hundred_char_note_earns_points_once_a_day(chat: Chat) -> None:
    conversation = chat.conversation
    note = "笔记 " + "悟" * 100

    assert "积分 +1" in await chat.say("1001", note)
    second = await chat.say("1001", note)
    assert "本周累计 200 字" in second
    assert "积分 +" not in second
    assert await by_source(conversation, "1001") == {"note": 1}

    conversation.clock.advance(days=1)
    assert "积分 +1" in await chat.say("1001", note)
    assert await by_source(conversation, "1001") == {"note": 2}
    assert await count(conversation, Note) == 3


async def test_ninety_nine_chars_earn_nothing(chat: Chat) -> None:
    await chat.say("1001", "笔记 " + "悟" * 99)
    assert await count(chat.conversation, PointsEntry) == 0


async def test_article_bonus_once_per_iso_week(chat: Chat) -> None:
    conversation = chat.conversation
    article = "笔记 " + "文" * 800

    reply = await chat.say("1001", article)
    assert "本周“写一文”已完成！" in reply
    assert "积分 +6" in reply  # the note point and the article bonus
    assert await by_source(conversation, "1001") == {"note": 1, "article": 5}

    # Another article later the same ISO week (Sunday the 29th): only the daily note point.
    conversation.clock.set(dt.datetime(2026, 11, 29, 22, 0, tzinfo=SHANGHAI))
    reply = await chat.say("1001", article)
    assert "积分 +1" in reply
    assert await by_source(conversation, "1001") == {"note": 2, "article": 5}

    # A new ISO week starts on Monday: the bonus again.
    conversation.clock.set(MONDAY_NEXT_WEEK)
    reply = await chat.say("1001", article)
    assert "积分 +6" in reply
    assert "本周累计 800 字" in reply
    assert await by_source(conversation, "1001") == {"note": 3, "article": 10}
    article_refs = [r.ref for r in await ledger(conversation, "1001") if r.source == "article"]
    assert article_refs == ["article:2026-W48", "article:2026-W49"]


async def test_short_notes_add_up_in_the_week_but_earn_no_article_bonus(chat: Chat) -> None:
    first = await chat.say("1001", "笔记 " + "思" * 500)
    assert "写一篇 800 字以上的笔记，即完成本周“写一文”" in first
    await chat.say("1001", "笔记 " + "思" * 500)
    reply = await chat.say("1001", "笔记 " + "思" * 10)
    assert "本周累计 1010 字" in reply
    # The week's total passed 800, but no single note did: not done, and not told so.
    assert "已完成" not in reply
    # The bonus needs one note of 800 characters, not a week's total.
    assert await by_source(chat.conversation, "1001") == {"note": 1}


# --- 排行 ----------------------------------------------------------------------------------


async def test_ranking_by_month_members_by_points_branches_by_score(chat: Chat) -> None:
    conversation = chat.conversation
    # Last month's points do not count this month.
    conversation.clock.set(dt.datetime(2026, 10, 31, 9, 0, tzinfo=SHANGHAI))
    for _ in range(4):
        await chat.say("1002", "笔记 " + "旧" * 800)
        conversation.clock.advance(days=-7)
    conversation.clock.set(MORNING)
    await chat.say("1001", "学习 120")  # 6 points
    await chat.say("1002", "学习 30")  # 1 point
    await chat.say("2001", "学习 120")  # 6 points

    reply = await chat.say("1001", "排行")

    assert "【11月排行】（截至25日 09:00）" in reply
    assert "第一党支部积分前列：" in reply
    assert "1. 张三 6分" in reply
    assert "2. 李四 1分" in reply
    assert "王芳" not in reply  # no points this month
    assert "赵强" not in reply  # another branch
    # Branches rank by the month's score so far (its numbers are tested in tests/reports):
    # half of 第二党支部 reached the goal today, a third of 第一党支部, none of 机关党支部.
    branches = reply[reply.index("支部评分排名：") :]
    assert branches.index("1. 第二党支部") < branches.index("2. 第一党支部")
    assert branches.index("2. 第一党支部") < branches.index("3. 机关党支部 0.0分")
    assert "第一党支部位列第 2/3。" in reply


async def test_ranking_from_the_other_branch(chat: Chat) -> None:
    await chat.say("1001", "学习 30")
    await chat.say("2001", "学习 60")
    reply = await chat.say("2002", "排行")
    assert "第二党支部积分前列：" in reply
    assert "1. 赵强 2分" in reply
    assert "张三" not in reply
    assert "第二党支部位列第 1/3。" in reply


async def test_ranking_orders_members_by_points(chat: Chat) -> None:
    await chat.say("1002", "学习 90")
    await chat.say("1003", "学习 30")
    await chat.say("1001", "学习 60")
    reply = await chat.say("1001", "排行")
    assert reply.index("1. 李四 3分") < reply.index("2. 张三 2分") < reply.index("3. 王芳 1分")


async def test_ranking_with_no_points(chat: Chat) -> None:
    reply = await chat.say("1001", "排行")
    assert "第一党支部本月还没有人获得积分。" in reply
    assert "前0名" not in reply
    # Every branch scored 0.0 so far: they share the first place.
    for branch in ("第一党支部", "第二党支部", "机关党支部"):
        assert f"1. {branch} 0.0分" in reply


# --- 帮助 and unknown texts ----------------------------------------------------------------


async def role_of(chat: Chat, roster_id: str) -> Role:
    async with chat.conversation.sessions() as session:
        member = await members.member_by_roster_id(session, roster_id)
        assert member is not None
        return Role(member.role)


async def test_help_for_a_member_omits_review(chat: Chat) -> None:
    reply = await chat.say("1001", "帮助")
    for usage in (
        "学习 <时长> [备注]",
        "补卡 <时长> [备注]",
        "微党课",
        "笔记 <学习心得>",
        "积分",
        "排行",
    ):
        assert usage in reply
    assert "审核" not in reply
    assert "通过 <编号>" not in reply
    assert "驳回 <编号> <原因>" not in reply


@pytest.mark.parametrize("roster_id", ["1003", "9001"])
async def test_help_for_a_secretary_or_admin_lists_review(chat: Chat, roster_id: str) -> None:
    reply = await chat.say(roster_id, "帮助")
    assert "· 审核 — 查看待审核的志愿服务" in reply
    assert "通过 <编号>" in reply
    assert "驳回 <编号> <原因>" in reply
    assert "学习 <时长> [备注]" in reply


@pytest.mark.parametrize("text", ["你好", "hello", "学 30", "？"])
async def test_unknown_text_points_to_help(chat: Chat, text: str) -> None:
    reply = await chat.say("1001", text)
    assert reply == "没看懂这条消息。发送“帮助”查看可用指令。"
    assert await count(chat.conversation, PointsEntry) == 0


@pytest.mark.parametrize("roster_id", ["1001", "1003", "9001"])
async def test_help_fits_one_reply_and_lists_every_command(chat: Chat, roster_id: str) -> None:
    reply = await chat.say(roster_id, "帮助")

    assert fits(reply)
    role = await role_of(chat, roster_id)
    for command in router.commands_for(role):
        assert f"· {command.usage}" in reply or command.name == "绑定"


async def test_staff_help_keeps_the_summaries_of_staff_commands(chat: Chat) -> None:
    reply = await chat.say("1003", "帮助")

    # Too many lines for one reply with every summary: the members' commands lose theirs.
    assert "· 学习 <时长> [备注]\n" in reply
    assert "· 签到码 <编号> — 签到时段取当前签到码（每2分钟更换）" in reply
    assert "· 学习 <时长> [备注] — " in await chat.say("1001", "帮助")
