"""Reviewing several entries at once in chat — `通过 12 13 14`, `通过 全部`, `驳回 12 13 原因` —
through the same operation as the console, within the reviewer's scope."""

from __future__ import annotations

import re

from sqlmodel import col, select

from data.models import AuditEntry, OutboxItem, PointsEntry, VolunteerEntry
from tests.conftest import Chat


async def submit(chat: Chat, roster_id: str, hours: int, text: str) -> int:
    found = re.search(r"编号 (\d+)", await chat.say(roster_id, f"志愿 {hours} {text}"))
    assert found
    return int(found.group(1))


async def states(chat: Chat) -> dict[int, str]:
    async with chat.conversation.sessions() as session:
        rows = await session.exec(select(VolunteerEntry).order_by(col(VolunteerEntry.id)))
        return {entry.id or 0: entry.state for entry in rows}


async def test_approve_three_by_number(chat: Chat) -> None:
    ids = [await submit(chat, "1001", 2, "敬老院"), await submit(chat, "1002", 1, "清扫楼道")]
    ids.append(await submit(chat, "1001", 3, "献血宣传"))

    reply = await chat.say("1003", f"通过 {ids[0]} {ids[1]}，{ids[2]}")

    assert "已通过 3 条" in reply and "张三 2 小时，积分 +4" in reply
    assert set((await states(chat)).values()) == {"approved"}
    async with chat.conversation.sessions() as session:
        audit = (
            await session.exec(select(AuditEntry).where(AuditEntry.action == "volunteer.approve"))
        ).all()
        notices = (await session.exec(select(OutboxItem).where(OutboxItem.kind == "review"))).all()
    assert sorted(int(a.object_id) for a in audit) == sorted(ids)
    assert {(a.door, a.origin, a.actor) for a in audit} == {("chat", "test", "王芳（1003）")}
    assert len(notices) == 3


async def test_approve_every_pending_entry_in_my_scope(chat: Chat) -> None:
    mine = [await submit(chat, "1001", 2, "敬老院"), await submit(chat, "1002", 1, "楼道")]
    own = await submit(chat, "1003", 1, "我自己的")
    other_branch = await submit(chat, "2001", 2, "第二支部")

    reply = await chat.say("1003", "通过 全部")

    assert "已通过 2 条" in reply
    found = await states(chat)
    assert [found[i] for i in mine] == ["approved", "approved"]
    assert found[own] == "pending" and found[other_branch] == "pending"
    assert "没有待你审核" in await chat.say("1003", "通过 全部")


async def test_reject_several_with_one_reason(chat: Chat) -> None:
    ids = [await submit(chat, "1001", 2, "敬老院"), await submit(chat, "1002", 1, "楼道")]

    reply = await chat.say("1003", f"驳回 {ids[0]} {ids[1]} 缺少活动照片，请补充")

    assert "已驳回 2 条（原因：缺少活动照片，请补充）" in reply
    async with chat.conversation.sessions() as session:
        rows = (await session.exec(select(VolunteerEntry))).all()
    assert {(entry.state, entry.reason) for entry in rows} == {("rejected", "缺少活动照片，请补充")}


async def test_mixed_numbers_say_what_was_left(chat: Chat) -> None:
    entry = await submit(chat, "1001", 2, "敬老院")
    foreign = await submit(chat, "2001", 2, "第二支部")

    reply = await chat.say("1003", f"通过 {entry} {foreign} 99999")

    assert "已通过 1 条" in reply and "未处理 2 条" in reply
    assert f"#{foreign} 找不到或不在你的审核范围内" in reply
    assert (await states(chat))[foreign] == "pending"


async def test_one_number_answers_as_before(chat: Chat) -> None:
    entry = await submit(chat, "1001", 2, "敬老院")
    assert f"已通过 #{entry}：张三 2 小时，积分 +4" in await chat.say("1003", f"通过 {entry}")
    assert "无需重复审核" in await chat.say("1003", f"通过 {entry}")


async def test_bad_selections_get_the_usage_line(chat: Chat) -> None:
    await submit(chat, "1001", 2, "敬老院")
    for text in (
        "通过 1 x",
        "通过 全",
        "通过 ፩",
        "驳回 1",
        "驳回 原因",
        "通过 " + " ".join(["1"] * 51),
    ):
        reply = await chat.say("1003", text)
        assert "用法" in reply, text
    assert set((await states(chat)).values()) == {"pending"}


async def test_chat_and_console_give_the_same_points_and_notice(chat: Chat) -> None:
    """The two doors call `bot.reviews.review`: compare the rows each leaves (the console
    door is driven through the same function here; its HTTP test is in tests/console)."""
    from bot import reviews
    from data import audit, members
    from data.db import transaction

    by_chat = await submit(chat, "1001", 2, "敬老院")
    by_console = await submit(chat, "1002", 2, "敬老院")
    await chat.say("1003", f"通过 {by_chat}")
    conversation = chat.conversation
    async with transaction(conversation.sessions) as session:
        reviewer = await members.member_by_roster_id(session, "1003")
        assert reviewer is not None
        await reviews.review(
            session,
            reviewer=reviewer,
            entry_ids=[by_console],
            approve=True,
            reason="",
            actor=audit.Actor.of_member(reviewer, audit.Door.CONSOLE, "127.0.0.1"),
            settings=conversation.settings,
            clock=conversation.clock,
            rules=conversation.rules.points,
        )
    async with conversation.sessions() as session:
        points = (
            await session.exec(select(PointsEntry).where(PointsEntry.source == "volunteer"))
        ).all()
        notices = (await session.exec(select(OutboxItem).where(OutboxItem.kind == "review"))).all()
        rows = (
            await session.exec(select(AuditEntry).where(AuditEntry.action == "volunteer.approve"))
        ).all()
    assert sorted((p.points, p.reason) for p in points) == [(4, points[0].reason)] * 2
    assert (
        len(
            {
                notice.text.replace(str(by_console), "N").replace(str(by_chat), "N")
                for notice in notices
            }
        )
        == 1
    )
    assert sorted(row.door for row in rows) == ["chat", "console"]
    assert (
        len({(row.before.replace("1002", "X").replace("1001", "X"), row.after) for row in rows})
        == 1
    )
