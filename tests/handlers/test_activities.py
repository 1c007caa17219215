"""活动: publishing one in one line or by the guided dialog, the notices, listing, 报名 with a
capacity and a waiting list, 取消报名, 请假 — and bad input that changes nothing."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlmodel import col, select

from bot.conversation import Conversation
from data.models import (
    Activity,
    ActivityBranch,
    Attendance,
    AuditEntry,
    DialogState,
    OutboxItem,
    StudyEntry,
)
from tests.conftest import MORNING, SHANGHAI, Chat
from tests.queries import count, member_id

PARTY_DAY = "活动 主题党日 11月26日 15:00 90分钟 三楼会议室 学习新修订的条例"
TRAINING = "活动 培训 11月26日 19:00 2小时 名额2 对象:全体 夜校教室 安全生产培训"


def activity_id(reply: str) -> int:
    found = re.search(r"编号 (\d+)", reply)
    assert found is not None, reply
    return int(found.group(1))


async def activity(conversation: Conversation, number: int) -> Activity:
    async with conversation.sessions() as session:
        found = await session.get(Activity, number)
        assert found is not None
        return found


async def outbox(conversation: Conversation, kind: str) -> list[OutboxItem]:
    async with conversation.sessions() as session:
        statement = (
            select(OutboxItem).where(OutboxItem.kind == kind).order_by(col(OutboxItem.member_id))
        )
        return list(await session.exec(statement))


async def states(conversation: Conversation, number: int) -> dict[int, str]:
    async with conversation.sessions() as session:
        rows = await session.exec(select(Attendance).where(Attendance.activity_id == number))
        return {row.member_id: row.state for row in rows}


# --- publishing in one line ---------------------------------------------------------------


async def test_a_secretary_publishes_for_their_branch_in_one_line(chat: Chat) -> None:
    reply = await chat.say("1003", PARTY_DAY)

    assert "已发布活动" in reply and "主题党日《学习新修订的条例》" in reply
    number = activity_id(reply)
    found = await activity(chat.conversation, number)
    start = dt.datetime(2026, 11, 26, 15, 0, tzinfo=SHANGHAI)
    assert (found.kind, found.title, found.place) == ("party_day", "学习新修订的条例", "三楼会议室")
    assert (found.starts_at, found.ends_at) == (start, start + dt.timedelta(minutes=90))
    assert found.organiser_id == await member_id(chat.conversation, "1003")
    assert found.capacity is None and found.volunteer_minutes == 0
    async with chat.conversation.sessions() as session:
        branches = list(await session.exec(select(ActivityBranch)))
    assert [b.branch_id for b in branches] == [found.branch_id]
    # The branch's three members are told now and reminded an hour before the start.
    first_branch = {await member_id(chat.conversation, r) for r in ("1001", "1002", "1003")}
    notices = await outbox(chat.conversation, "activity")
    assert {n.member_id for n in notices} == first_branch
    assert all(n.due_at == MORNING for n in notices)
    assert "【活动通知】主题党日《学习新修订的条例》" in notices[0].text
    assert f"请假 {number} 原因" in notices[0].text
    reminders = await outbox(chat.conversation, "activity_reminder")
    assert {r.member_id for r in reminders} == first_branch
    assert all(r.due_at == start - dt.timedelta(hours=1) for r in reminders)
    assert await count(chat.conversation, AuditEntry, AuditEntry.action == "activity.create") == 1


async def test_an_admin_opens_sign_up_to_everyone_with_a_capacity(chat: Chat) -> None:
    number = activity_id(await chat.say("9001", TRAINING))

    found = await activity(chat.conversation, number)
    assert (found.kind, found.capacity, found.branch_id) == ("training", 2, None)
    assert found.ends_at - found.starts_at == dt.timedelta(hours=2)
    # Everyone is invited; the reminder waits for a sign-up.
    assert len(await outbox(chat.conversation, "activity")) == 6
    assert await outbox(chat.conversation, "activity_reminder") == []


async def test_an_admin_names_branches_and_a_volunteer_activity_its_hours(chat: Chat) -> None:
    reply = await chat.say(
        "9001", "活动 志愿活动 明天上午9点 3小时 对象:第一党支部、第二党支部 志愿2小时 社区 清扫"
    )

    found = await activity(chat.conversation, activity_id(reply))
    assert (found.kind, found.volunteer_minutes, found.place, found.title) == (
        "volunteer",
        120,
        "社区",
        "清扫",
    )
    notified = {n.member_id for n in await outbox(chat.conversation, "activity")}
    expected = {await member_id(chat.conversation, r) for r in ("1001", "1002", "1003")}
    expected |= {await member_id(chat.conversation, r) for r in ("2001", "2002")}
    assert notified == expected


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("活动 主题党日 11月20日 15:00 三楼 学习", "已经过去"),
        ("活动 主题党日 今天 8:00 三楼 学习", "已经过去"),
        ("活动 茶话会 明天 15:00 三楼 学习", "请以活动类型开头"),
        ("活动 主题党日 明天 三楼 学习", "没有看懂时间"),
        ("活动 主题党日 明天15:00 5分钟 三楼 学习", "活动时长"),
        ("活动 主题党日 明天15:00 三楼", "请写上活动主题"),
        ("活动 培训 明天15:00 名额0 三楼 学习", "名额至少 1 人"),
        ("活动 主题党日 明天15:00 对象:全体 三楼 学习", "只能为本支部"),
    ],
)
async def test_bad_input_is_answered_and_changes_nothing(chat: Chat, text: str, hint: str) -> None:
    reply = await chat.say("1003", text)

    assert hint in reply
    assert "用法：活动" in reply
    assert await count(chat.conversation, Activity) == 0
    assert await count(chat.conversation, OutboxItem) == 0
    assert await count(chat.conversation, AuditEntry) == 0


async def test_an_unknown_branch_is_named(chat: Chat) -> None:
    reply = await chat.say("9001", "活动 党课 明天15:00 对象:第九党支部 礼堂 党史")
    assert "没有这些支部：第九党支部" in reply
    assert await count(chat.conversation, Activity) == 0


async def test_a_member_may_not_publish(chat: Chat) -> None:
    reply = await chat.say("1001", PARTY_DAY)
    assert "没有使用“活动”的权限" in reply
    assert await count(chat.conversation, Activity) == 0


# --- no two activities at once for the same people -----------------------------------------


@pytest.mark.parametrize(
    ("by", "line"),
    [
        ("1003", "活动 党小组会 11月26日 16:00 1小时 二楼 学习交流"),  # its branch, overlapping
        ("1003", "活动 支委会 11月26日 14:00 6小时 二楼 工作部署"),  # covering it
        ("9001", "活动 党课 11月26日 16:00 1小时 对象:全体 礼堂 党史"),  # every branch
        ("9001", "活动 党课 11月26日 15:00 1小时 对象:第一党支部、第二党支部 礼堂 党史"),
    ],
)
async def test_an_activity_overlapping_one_of_the_same_branches_is_refused(
    chat: Chat, by: str, line: str
) -> None:
    first = activity_id(await chat.say("1003", PARTY_DAY))
    queued = await count(chat.conversation, OutboxItem)

    reply = await chat.say(by, line)

    assert f"时间与活动 {first} 主题党日《学习新修订的条例》（11月26日 15:00—16:30）重叠" in reply
    assert await count(chat.conversation, Activity) == 1
    assert await count(chat.conversation, OutboxItem) == queued
    assert await count(chat.conversation, AuditEntry, AuditEntry.action == "activity.create") == 1


async def test_the_same_organiser_cannot_be_at_two_at_once(chat: Chat) -> None:
    first = activity_id(
        await chat.say("9001", "活动 党课 11月26日 15:00 对象:第二党支部 礼堂 党史")
    )

    reply = await chat.say("9001", "活动 党课 11月26日 15:30 对象:第一党支部 礼堂 党史")

    assert f"时间与活动 {first} 党课《党史》" in reply
    assert await count(chat.conversation, Activity) == 1


async def test_back_to_back_and_other_branches_at_the_same_time_are_allowed(chat: Chat) -> None:
    activity_id(await chat.say("1003", PARTY_DAY))

    # Starting as the other ends; another branch's own meeting at the same time.
    activity_id(await chat.say("1003", "活动 党小组会 11月26日 16:30 1小时 二楼 学习交流"))
    activity_id(await chat.say("1003", "活动 支委会 11月26日 14:00 1小时 二楼 工作部署"))
    activity_id(await chat.say("2002", "活动 主题党日 11月26日 15:00 90分钟 礼堂 参观学习"))
    activity_id(await chat.say("9001", "活动 党课 11月26日 15:00 1小时 对象:机关党支部 夜校 党史"))

    assert await count(chat.conversation, Activity) == 5


async def test_the_dialog_asks_again_for_a_time_already_taken(chat: Chat) -> None:
    first = activity_id(await chat.say("1003", PARTY_DAY))
    await chat.say("1003", "活动")
    await chat.say("1003", "党小组会")

    reply = await chat.say("1003", "11月26日 16:00 1小时")

    assert f"时间与活动 {first} 主题党日" in reply and "请重新回复" in reply
    assert "请回复地点" in await chat.say("1003", "11月26日 16:30 1小时")


async def test_a_time_taken_while_the_dialog_waited_is_asked_again(chat: Chat) -> None:
    for answer in ["活动", "党小组会", "11月26日 16:00 1小时", "二楼", "学习交流"]:
        await chat.say("1003", answer)
    first = activity_id(await chat.say("9001", "活动 党课 11月26日 16:30 对象:全体 礼堂 党史"))

    assert f"时间与活动 {first} 党课" in await chat.say("1003", "确认")
    assert "请回复地点" in await chat.say("1003", "11月26日 18:00 1小时")
    assert await count(chat.conversation, Activity) == 1


# --- the guided dialog --------------------------------------------------------------------


async def test_the_guided_dialog_asks_step_by_step_and_publishes(chat: Chat) -> None:
    assert "请回复活动类型" in await chat.say("1003", "活动")
    assert "请回复时间" in await chat.say("1003", "主题党日")
    assert "请回复地点" in await chat.say("1003", "明天下午3点 90分钟")
    assert "请回复活动主题" in await chat.say("1003", "三楼会议室")
    # A title that starts with a command word is still the title.
    summary = await chat.say("1003", "学习新修订的条例")
    assert "主题：学习新修订的条例" in summary and "时间：11月26日 15:00，90 分钟" in summary
    assert await count(chat.conversation, StudyEntry) == 0
    assert await count(chat.conversation, Activity) == 0

    reply = await chat.say("1003", "确认")

    found = await activity(chat.conversation, activity_id(reply))
    assert (found.kind, found.title, found.place) == ("party_day", "学习新修订的条例", "三楼会议室")
    assert found.starts_at == dt.datetime(2026, 11, 26, 15, 0, tzinfo=SHANGHAI)
    assert len(await outbox(chat.conversation, "activity")) == 3
    assert await count(chat.conversation, DialogState) == 0


@pytest.mark.parametrize("steps", [[], ["党课"], ["党课", "明天9点"], ["党课", "明天9点", "礼堂"]])
async def test_cancel_at_any_step_changes_nothing(chat: Chat, steps: list[str]) -> None:
    await chat.say("1003", "活动")
    for step in steps:
        await chat.say("1003", step)

    assert "已取消新建活动" in await chat.say("1003", "取消")
    assert await count(chat.conversation, Activity) == 0
    assert await count(chat.conversation, DialogState) == 0
    assert "没看懂这条消息" in await chat.say("1003", "确认")


async def test_a_bad_time_in_the_dialog_is_asked_again(chat: Chat) -> None:
    await chat.say("1003", "活动")
    await chat.say("1003", "党课")

    assert "已经过去" in await chat.say("1003", "今天8点")
    assert "没有看懂时间" in await chat.say("1003", "找个时间")
    assert "请回复地点" in await chat.say("1003", "明天9点")


async def test_a_command_instead_of_a_kind_ends_the_dialog(chat: Chat) -> None:
    await chat.say("1003", "活动")

    reply = await chat.say("1003", "学习 30")

    assert "30" in reply and "分钟" in reply
    assert await count(chat.conversation, StudyEntry) == 1
    assert await count(chat.conversation, DialogState) == 0


async def test_past_at_confirmation_publishes_nothing(chat: Chat) -> None:
    await chat.say("1003", "活动")
    await chat.say("1003", "党课")
    await chat.say("1003", "今天9点10分")
    await chat.say("1003", "礼堂")
    await chat.say("1003", "党史")
    chat.conversation.clock.advance(minutes=15)  # type: ignore[attr-defined]

    assert "已经过去" in await chat.say("1003", "确认")
    assert await count(chat.conversation, Activity) == 0


# --- listing, 报名, 取消报名, 请假 ------------------------------------------------------


async def test_members_list_their_upcoming_activities(chat: Chat) -> None:
    first = activity_id(await chat.say("1003", PARTY_DAY))
    second = activity_id(await chat.say("2002", "活动 支委会 明天10点 二楼 工作部署"))

    mine = await chat.say("1001", "活动")
    theirs = await chat.say("2001", "活动")

    assert f"[{first}] 主题党日《学习新修订的条例》11月26日 15:00—16:30 三楼会议室" in mine
    assert f"[{second}]" not in mine
    assert f"[{second}] 支委会《工作部署》" in theirs and f"[{first}]" not in theirs
    assert "近期没有你的活动" in await chat.say("9001", "活动")


async def test_sign_up_fills_the_places_then_the_waiting_list_moves_up(chat: Chat) -> None:
    number = activity_id(await chat.say("9001", TRAINING))
    ids = {r: await member_id(chat.conversation, r) for r in ("1001", "1002", "2001", "2002")}

    assert "报名成功" in await chat.say("1001", f"报名 {number}")
    assert "报名成功" in await chat.say("1002", f"报名 {number}")
    assert "前面还有 0 人" in await chat.say("2001", f"报名 {number}")
    assert "前面还有 1 人" in await chat.say("2002", f"报名 {number}")
    assert "已报名" in await chat.say("1001", f"报名 {number}")
    reminded = {r.member_id for r in await outbox(chat.conversation, "activity_reminder")}
    assert reminded == {ids["1001"], ids["1002"]}

    assert "已取消报名" in await chat.say("1001", f"取消报名 {number}")

    assert await states(chat.conversation, number) == {
        ids["1001"]: "cancelled",
        ids["1002"]: "registered",
        ids["2001"]: "registered",
        ids["2002"]: "waiting",
    }
    pushes = await outbox(chat.conversation, "activity")
    told = [p for p in pushes if p.key.endswith(":up:2026-11-26")]
    assert [p.member_id for p in told] == [ids["2001"]]
    assert "从候补转为正式报名" in told[0].text
    reminded = {r.member_id for r in await outbox(chat.conversation, "activity_reminder")}
    assert reminded == {ids["1001"], ids["1002"], ids["2001"]}
    # Leaving the waiting list frees no place: nobody moves.
    await chat.say("2002", f"取消报名 {number}")
    assert (await states(chat.conversation, number))[ids["2002"]] == "cancelled"
    # Back on the list after the places filled again.
    assert "前面还有 0 人" in await chat.say("1001", f"报名 {number}")


async def test_sign_up_refusals(chat: Chat) -> None:
    meeting = activity_id(await chat.say("1003", PARTY_DAY))
    training = activity_id(await chat.say("9001", TRAINING))

    assert "不需要报名" in await chat.say("1001", f"报名 {meeting}")
    assert "没有找到编号为 999 的活动" in await chat.say("1001", "报名 999")
    assert f"没有找到编号为 {meeting} 的活动" in await chat.say("2001", f"报名 {meeting}")
    assert "你没有报名" in await chat.say("1001", f"取消报名 {training}")
    assert "请写上活动编号" in await chat.say("1001", "报名 十二")
    chat.conversation.clock.set(dt.datetime(2026, 11, 26, 19, 0, tzinfo=SHANGHAI))  # type: ignore[attr-defined]
    assert "已经开始" in await chat.say("1001", f"报名 {training}")
    assert await count(chat.conversation, Attendance) == 0


async def test_leave_before_the_start(chat: Chat) -> None:
    number = activity_id(await chat.say("1003", PARTY_DAY))

    reply = await chat.say("1001", f"请假 {number} 出差在外")

    assert "已为活动“学习新修订的条例”请假，原因：出差在外" in reply
    async with chat.conversation.sessions() as session:
        row = (await session.exec(select(Attendance))).one()
    assert (row.state, row.reason) == ("leave", "出差在外")
    assert "请写上请假原因" in await chat.say("1002", f"请假 {number}")
    assert "没有找到" in await chat.say("2001", f"请假 {number} 有事")
    chat.conversation.clock.set(dt.datetime(2026, 11, 26, 15, 0, tzinfo=SHANGHAI))  # type: ignore[attr-defined]
    assert "已经开始" in await chat.say("1002", f"请假 {number} 有事")
    assert await count(chat.conversation, Attendance) == 1


async def test_reminders_are_configurable_and_notices_wait_for_the_quiet_hours(chat: Chat) -> None:
    conversation = chat.conversation
    conversation.settings = conversation.settings.model_copy(
        update={"activity_reminder_minutes": 0}
    )
    conversation.clock.set(dt.datetime(2026, 11, 25, 22, 30, tzinfo=SHANGHAI))  # type: ignore[attr-defined]

    await chat.say("1003", "活动 党课 明天9点 礼堂 党史")

    assert await outbox(conversation, "activity_reminder") == []
    notices = await outbox(conversation, "activity")
    assert {n.due_at for n in notices} == {dt.datetime(2026, 11, 26, 7, 0, tzinfo=SHANGHAI)}
