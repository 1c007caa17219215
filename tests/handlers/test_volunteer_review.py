"""志愿 submits volunteer hours; 审核/通过/驳回 review them; the owner hears the result."""

from __future__ import annotations

import re

import pytest
from sqlmodel import col, select

from bot.conversation import Conversation
from data.models import OutboxItem, OutboxState, PointsEntry, ReviewState, VolunteerEntry
from tests.conftest import MORNING, Chat
from tests.queries import count, member_id

NOTICE_HEADER = "【你有 1 条新通知】"


async def entry(conversation: Conversation, entry_id: int) -> VolunteerEntry:
    async with conversation.sessions() as session:
        found = await session.get(VolunteerEntry, entry_id)
        assert found is not None
        return found


async def volunteer_points(conversation: Conversation, roster_id: str) -> list[PointsEntry]:
    mid = await member_id(conversation, roster_id)
    async with conversation.sessions() as session:
        statement = (
            select(PointsEntry)
            .where(PointsEntry.member_id == mid, PointsEntry.source == "volunteer")
            .order_by(col(PointsEntry.id))
        )
        return list(await session.exec(statement))


async def submit(chat: Chat, roster_id: str, text: str = "志愿 2 陪老人") -> int:
    """Submit hours and return the entry id the reply names."""
    reply = await chat.say(roster_id, text)
    found = re.search(r"编号 (\d+)", reply)
    assert found is not None, reply
    return int(found.group(1))


# --- submitting ---------------------------------------------------------------------------


async def test_submit_creates_a_pending_entry(chat: Chat) -> None:
    reply = await chat.say("1001", "志愿 2 陪老人")

    assert "已提交志愿服务 2 小时" in reply
    assert "：陪老人" in reply
    assert "等待支部书记审核" in reply
    async with chat.conversation.sessions() as session:
        rows = list(await session.exec(select(VolunteerEntry)))
    assert len(rows) == 1
    row = rows[0]
    assert row.member_id == await member_id(chat.conversation, "1001")
    assert (row.minutes, row.description, row.state) == (120, "陪老人", ReviewState.PENDING.value)
    assert row.day == MORNING.date()
    assert row.reviewer_id is None
    assert f"编号 {row.id}" in reply
    # Nothing is awarded before review.
    assert await count(chat.conversation, PointsEntry) == 0


@pytest.mark.parametrize(
    ("text", "minutes", "description"),
    [
        ("志愿 1.5小时 辅导留守儿童", 90, "辅导留守儿童"),
        ("志愿 0.5 扫雪", 30, "扫雪"),
        ("志愿 24 抢险", 24 * 60, "抢险"),
        ("志愿 两个半小时 义诊", 150, "义诊"),
        ("志愿：3 植树", 180, "植树"),
    ],
)
async def test_submit_amount_spellings(
    chat: Chat, text: str, minutes: int, description: str
) -> None:
    entry_id = await submit(chat, "1001", text)
    row = await entry(chat.conversation, entry_id)
    assert (row.minutes, row.description) == (minutes, description)


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("志愿 0.4 陪老人", "每次可提交 0.5 到 24 小时"),
        ("志愿 25 陪老人", "每次可提交 0.5 到 24 小时"),
        ("志愿 0 陪老人", "每次可提交 0.5 到 24 小时"),
        ("志愿 2", "请写上服务内容"),
        ("志愿 陪老人", "没看懂服务时长"),
        ("志愿", "没看懂服务时长"),
    ],
)
async def test_bad_submissions_give_usage_and_write_nothing(
    chat: Chat, text: str, hint: str
) -> None:
    reply = await chat.say("1001", text)

    assert "用法：志愿 <小时> <服务内容>" in reply
    assert hint in reply
    assert await count(chat.conversation, VolunteerEntry) == 0


# --- permissions and scope ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "word"), [("审核", "审核"), ("通过 {id}", "通过"), ("驳回 {id} 不实", "驳回")]
)
async def test_plain_member_may_not_review(chat: Chat, text: str, word: str) -> None:
    entry_id = await submit(chat, "1002")
    reply = await chat.say("1001", text.format(id=entry_id))

    assert f"您没有使用“{word}”的权限" in reply
    row = await entry(chat.conversation, entry_id)
    assert row.state == ReviewState.PENDING.value
    assert await count(chat.conversation, PointsEntry) == 0


async def test_secretary_sees_only_their_branch(chat: Chat) -> None:
    first = await submit(chat, "1001", "志愿 2 陪老人")
    second = await submit(chat, "2001", "志愿 1 扫雪")

    reply = await chat.say("1003", "审核")
    assert "待审核志愿服务 1 条" in reply
    assert f"#{first} 张三 2小时 11/25 陪老人" in reply
    assert f"#{second}" not in reply
    assert "赵强" not in reply

    reply = await chat.say("2002", "审核")
    assert "待审核志愿服务 1 条" in reply
    assert f"#{second} 赵强 1小时 11/25 扫雪" in reply
    assert "张三" not in reply


async def test_admin_sees_every_branch(chat: Chat) -> None:
    first = await submit(chat, "1001", "志愿 2 陪老人")
    second = await submit(chat, "2001", "志愿 1 扫雪")

    reply = await chat.say("9001", "审核")
    assert "待审核志愿服务 2 条" in reply
    assert reply.index(f"#{first} 张三") < reply.index(f"#{second} 赵强")


async def test_nothing_pending(chat: Chat) -> None:
    assert "没有待审核的志愿服务记录" in await chat.say("1003", "审核")
    entry_id = await submit(chat, "1001")
    await chat.say("1003", f"通过 {entry_id}")
    assert "没有待审核的志愿服务记录" in await chat.say("1003", "审核")


# --- approving ----------------------------------------------------------------------------


async def test_approve_awards_points_once_and_notifies_once(chat: Chat) -> None:
    conversation = chat.conversation
    entry_id = await submit(chat, "1001", "志愿 2 陪老人")

    reply = await chat.say("1003", f"通过 {entry_id}")
    per_hour = conversation.rules.points.volunteer_per_hour
    assert f"已通过 #{entry_id}：张三 2 小时，积分 +{2 * per_hour}" in reply

    row = await entry(conversation, entry_id)
    assert row.state == ReviewState.APPROVED.value
    assert row.reviewer_id == await member_id(conversation, "1003")
    assert row.reviewed_at is not None
    awarded = await volunteer_points(conversation, "1001")
    assert [(p.points, p.ref) for p in awarded] == [(4, f"volunteer:{entry_id}")]

    # The owner's next reply, whatever the command, starts with the notice.
    reply = await chat.say("1001", "今日")
    assert reply.startswith(NOTICE_HEADER)
    assert f"你的志愿服务 #{entry_id}（2 小时，陪老人）已通过审核，积分 +4" in reply
    assert "今日学习：0/120 分钟" in reply
    assert reply.index("已通过审核") < reply.index("今日学习")

    # Delivered once only.
    again = await chat.say("1001", "今日")
    assert "新通知" not in again
    assert "已通过审核" not in again
    pending = col(OutboxItem.state) == OutboxState.PENDING.value
    assert await count(conversation, OutboxItem, pending) == 0

    # The reviewer does not get the owner's notice.
    assert "新通知" not in await chat.say("1003", "今日")


async def test_notice_comes_with_an_unknown_text_too(chat: Chat) -> None:
    entry_id = await submit(chat, "1001")
    await chat.say("1003", f"通过 #{entry_id}")
    reply = await chat.say("1001", "你好")
    assert reply.startswith(NOTICE_HEADER)
    assert "没看懂这条消息" in reply


async def test_half_hours_count_half(chat: Chat) -> None:
    entry_id = await submit(chat, "1001", "志愿 1.5 辅导功课")
    reply = await chat.say("1003", f"通过 {entry_id}")
    assert "积分 +3" in reply
    assert [p.points for p in await volunteer_points(chat.conversation, "1001")] == [3]


async def test_admin_approves_any_branch(chat: Chat) -> None:
    entry_id = await submit(chat, "2001")
    assert f"已通过 #{entry_id}：赵强" in await chat.say("9001", f"通过 {entry_id}")
    assert (await entry(chat.conversation, entry_id)).state == ReviewState.APPROVED.value


# --- rejecting ----------------------------------------------------------------------------


async def test_reject_with_reason_notifies(chat: Chat) -> None:
    conversation = chat.conversation
    entry_id = await submit(chat, "1001")

    reply = await chat.say("1003", f"驳回 {entry_id} 时长与签到表不符")
    assert f"已驳回 #{entry_id}：张三，原因：时长与签到表不符" in reply

    row = await entry(conversation, entry_id)
    assert row.state == ReviewState.REJECTED.value
    assert row.reason == "时长与签到表不符"
    assert row.reviewer_id == await member_id(conversation, "1003")
    assert await count(conversation, PointsEntry) == 0

    reply = await chat.say("1001", "积分")
    assert reply.startswith(NOTICE_HEADER)
    assert f"你的志愿服务 #{entry_id}（2 小时，陪老人）未通过审核，原因：时长与签到表不符" in reply
    assert "未通过审核" not in await chat.say("1001", "积分")


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("驳回 {id}", "驳回时请写上原因"),
        ("驳回 {id}  ", "驳回时请写上原因"),
        ("驳回", "请写上记录编号"),
    ],
)
async def test_reject_without_reason_gives_usage(chat: Chat, text: str, hint: str) -> None:
    entry_id = await submit(chat, "1001")
    reply = await chat.say("1003", text.format(id=entry_id))

    assert "用法：驳回 <编号> <原因>" in reply
    assert hint in reply
    assert (await entry(chat.conversation, entry_id)).state == ReviewState.PENDING.value
    assert await count(chat.conversation, OutboxItem) == 0


@pytest.mark.parametrize("text", ["通过", "通过 abc"])
async def test_approve_without_a_number_gives_usage(chat: Chat, text: str) -> None:
    entry_id = await submit(chat, "1001")
    reply = await chat.say("1003", text)
    assert "用法：通过 <编号>" in reply
    assert (await entry(chat.conversation, entry_id)).state == ReviewState.PENDING.value


# --- reviewing twice, out of scope, own entries -------------------------------------------


async def test_reviewing_twice_says_already_reviewed(chat: Chat) -> None:
    conversation = chat.conversation
    entry_id = await submit(chat, "1001")
    await chat.say("1003", f"通过 {entry_id}")

    assert f"编号 {entry_id} 已经通过，无需重复审核" in await chat.say("1003", f"通过 {entry_id}")
    assert f"编号 {entry_id} 已经通过" in await chat.say("9001", f"驳回 {entry_id} 重复")

    row = await entry(conversation, entry_id)
    assert row.state == ReviewState.APPROVED.value
    assert row.reason == ""
    assert len(await volunteer_points(conversation, "1001")) == 1
    assert await count(conversation, OutboxItem) == 1


async def test_rejected_entry_cannot_be_approved_later(chat: Chat) -> None:
    entry_id = await submit(chat, "1001")
    await chat.say("1003", f"驳回 {entry_id} 不实")
    assert f"编号 {entry_id} 已经驳回" in await chat.say("9001", f"通过 {entry_id}")
    assert (await entry(chat.conversation, entry_id)).state == ReviewState.REJECTED.value
    assert await count(chat.conversation, PointsEntry) == 0


async def test_secretary_cannot_review_another_branch(chat: Chat) -> None:
    entry_id = await submit(chat, "2001")

    for text in (f"通过 {entry_id}", f"驳回 {entry_id} 不实"):
        reply = await chat.say("1003", text)
        assert f"找不到编号 {entry_id} 的志愿服务记录" in reply

    row = await entry(chat.conversation, entry_id)
    assert row.state == ReviewState.PENDING.value
    assert row.reviewer_id is None
    assert await count(chat.conversation, PointsEntry) == 0
    assert await count(chat.conversation, OutboxItem) == 0


async def test_secretary_cannot_review_their_own_entry(chat: Chat) -> None:
    entry_id = await submit(chat, "1003", "志愿 3 组织党日活动")

    assert f"编号 {entry_id} 是你本人的记录" in await chat.say("1003", f"通过 {entry_id}")
    assert f"编号 {entry_id} 是你本人的记录" in await chat.say("1003", f"驳回 {entry_id} 测试")
    assert (await entry(chat.conversation, entry_id)).state == ReviewState.PENDING.value
    assert await count(chat.conversation, PointsEntry) == 0

    # Someone else may.
    assert f"已通过 #{entry_id}：王芳 3 小时，积分 +6" in await chat.say("9001", f"通过 {entry_id}")


async def test_unknown_entry(chat: Chat) -> None:
    assert "找不到编号 999 的志愿服务记录" in await chat.say("9001", "通过 999")


async def test_description_is_kept_as_typed(chat: Chat) -> None:
    # Full-width digits are read as the amount; the member's words stay as typed.
    entry_id = await submit(chat, "1001", "志愿 ２ 陪老人（体检），送药")

    row = await entry(chat.conversation, entry_id)
    assert row.minutes == 120
    assert row.description == "陪老人（体检），送药"


async def test_reason_is_kept_as_typed(chat: Chat) -> None:
    entry_id = await submit(chat, "1001", "志愿 2 陪老人")
    await chat.say("1003", f"驳回 {entry_id} 时长不符，请附签到表！")

    row = await entry(chat.conversation, entry_id)
    assert row.reason == "时长不符，请附签到表！"
    assert "原因：时长不符，请附签到表！" in await chat.say("1001", "积分")
