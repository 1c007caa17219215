"""签到码, 签到 and 补签: rotating codes, the window, guessing throttled, once only, and what
attendance credits (study time, volunteer hours, points) — once, even when retried."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from bot import activity_codes
from bot.attendance import WRONG_CODES
from bot.clock import FixedClock
from bot.conversation import Conversation
from data.models import Activity, Attendance, AuditEntry, PointsEntry, StudyEntry, VolunteerEntry
from tests.conftest import SHANGHAI, Chat
from tests.handlers.test_activities import PARTY_DAY, activity_id
from tests.queries import count, member_id

START = dt.datetime(2026, 11, 26, 15, 0, tzinfo=SHANGHAI)  # PARTY_DAY's start
SECRET = "00" * 32


def clock_of(chat: Chat) -> FixedClock:
    clock = chat.conversation.clock
    assert isinstance(clock, FixedClock)
    return clock


async def code_now(chat: Chat, number: int, organiser: str = "1003") -> str:
    reply = await chat.say(organiser, f"签到码 {number}")
    found = re.search(r"签到码：(\d{4})", reply)
    assert found is not None, reply
    return found.group(1)


async def present(conversation: Conversation, number: int) -> set[int]:
    async with conversation.sessions() as session:
        rows = await session.exec(
            select(Attendance).where(
                Attendance.activity_id == number, Attendance.state == "present"
            )
        )
        return {row.member_id for row in rows}


async def publish(chat: Chat, text: str = PARTY_DAY, by: str = "1003") -> int:
    return activity_id(await chat.say(by, text))


# --- the codes --------------------------------------------------------------------------


def test_codes_are_four_digits_and_change_every_two_minutes() -> None:
    step = activity_codes.step_of(START)
    codes = [activity_codes.code_for(SECRET, step + n) for n in range(50)]
    assert all(re.fullmatch(r"\d{4}", code) for code in codes)
    assert len(set(codes)) > 40  # they do change
    assert activity_codes.step_of(START + dt.timedelta(seconds=119)) == step
    assert activity_codes.step_of(START + dt.timedelta(seconds=120)) == step + 1
    assert activity_codes.changes_at(START + dt.timedelta(seconds=30)) == START + dt.timedelta(
        minutes=2
    )


def test_codes_depend_on_the_secret() -> None:
    step = activity_codes.step_of(START)
    other = activity_codes.new_secret()
    pairs = [
        (activity_codes.code_for(SECRET, step + n), activity_codes.code_for(other, step + n))
        for n in range(20)
    ]
    assert sum(a == b for a, b in pairs) < 5


@given(st.integers(0, 10_000_000))
def test_the_current_and_previous_code_are_accepted_and_no_other(offset: int) -> None:
    moment = START + dt.timedelta(seconds=offset)
    step = activity_codes.step_of(moment)
    current = activity_codes.code_for(SECRET, step)
    previous = activity_codes.code_for(SECRET, step - 1)
    older = activity_codes.code_for(SECRET, step - 2)
    assert activity_codes.accepts(SECRET, current, moment)
    assert activity_codes.accepts(SECRET, previous, moment)
    if older not in (current, previous):
        assert not activity_codes.accepts(SECRET, older, moment)


# --- 签到码 ------------------------------------------------------------------------------


async def test_the_organiser_gets_the_code_only_in_the_window(chat: Chat) -> None:
    number = await publish(chat)
    clock = clock_of(chat)

    clock.set(START - dt.timedelta(minutes=31))
    assert "不在签到时段" in await chat.say("1003", f"签到码 {number}")
    clock.set(START - dt.timedelta(minutes=30))
    found = await activity(chat.conversation, number)
    assert await code_now(chat, number) == activity_codes.current_code(found.secret, clock.now())
    clock.set(START + dt.timedelta(minutes=90))  # the end
    assert await code_now(chat, number)
    clock.advance(seconds=1)
    assert "不在签到时段" in await chat.say("1003", f"签到码 {number}")


async def test_only_staff_of_the_activity_get_its_code(chat: Chat) -> None:
    number = await publish(chat)
    clock_of(chat).set(START)

    assert "没有找到" in await chat.say("2002", f"签到码 {number}")
    assert "没有使用“签到码”的权限" in await chat.say("1001", f"签到码 {number}")
    assert await code_now(chat, number, organiser="9001")


async def activity(conversation: Conversation, number: int) -> Activity:
    async with conversation.sessions() as session:
        found = await session.get(Activity, number)
        assert found is not None
        return found


async def test_the_sign_in_window_is_configurable(chat: Chat) -> None:
    number = await publish(chat)
    chat.conversation.settings = chat.conversation.settings.model_copy(
        update={"activity_sign_in_minutes": 10}
    )
    clock = clock_of(chat)
    clock.set(START - dt.timedelta(minutes=11))
    assert "不在签到时段" in await chat.say("1003", f"签到码 {number}")
    clock.set(START - dt.timedelta(minutes=10))
    assert await code_now(chat, number)


# --- 签到 --------------------------------------------------------------------------------


async def test_members_sign_in_once_across_a_rotation(chat: Chat) -> None:
    number = await publish(chat)
    clock = clock_of(chat)
    clock.set(START - dt.timedelta(minutes=5))
    first = await code_now(chat, number)

    assert "签到成功：《学习新修订的条例》" in await chat.say("1001", f"签到 {first}")
    assert "已签到过" in await chat.say("1001", f"签到 {first}")
    clock.advance(minutes=2)  # the code changed: the one read out just before still works
    assert "签到成功" in await chat.say("1002", f"签到 {number} {first}")
    clock.advance(minutes=2)  # two changes on, it does not
    assert "签到码不对" in await chat.say("1003", f"签到 {first}")
    assert "签到成功" in await chat.say("1003", f"签到 {await code_now(chat, number)}")

    expected = {await member_id(chat.conversation, r) for r in ("1001", "1002", "1003")}
    assert await present(chat.conversation, number) == expected


async def test_sign_in_answers_outside_the_rules(chat: Chat) -> None:
    number = await publish(chat)
    clock = clock_of(chat)

    assert "现在没有正在签到的活动" in await chat.say("1001", "签到 1234")
    clock.set(START)
    code = await code_now(chat, number)
    assert "不包括你" in await chat.say("2001", f"签到 {code}")
    assert "不包括你" in await chat.say("2001", f"签到 {number} {code}")
    assert "现在没有正在签到的活动" in await chat.say("1001", f"签到 999 {code}")
    assert "请写上4位签到码" in await chat.say("1001", "签到 12345")
    assert "请写上4位签到码" in await chat.say("1001", "签到")
    clock.set(START + dt.timedelta(minutes=91))
    assert "现在没有正在签到的活动" in await chat.say("1001", f"签到 {code}")
    assert await present(chat.conversation, number) == set()


async def test_a_member_on_leave_is_not_signed_in(chat: Chat) -> None:
    number = await publish(chat)
    await chat.say("1001", f"请假 {number} 出差")
    clock_of(chat).set(START)

    assert "你已为《学习新修订的条例》请假" in await chat.say(
        "1001", f"签到 {await code_now(chat, number)}"
    )
    assert await present(chat.conversation, number) == set()


async def test_two_activities_open_need_the_number(chat: Chat) -> None:
    first = await publish(chat)
    # Back to back (at once they would clash): both windows are open before the second.
    second = await publish(chat, "活动 党小组会 11月26日 16:30 1小时 二楼 学习交流")
    clock_of(chat).set(START + dt.timedelta(minutes=70))
    code = await code_now(chat, second)

    assert f"编号 {first}、{second}" in await chat.say("1001", f"签到 {code}")
    assert "签到成功：《学习交流》" in await chat.say("1001", f"签到 {second} {code}")
    assert await present(chat.conversation, first) == set()


async def test_wrong_codes_are_throttled_per_member(chat: Chat) -> None:
    number = await publish(chat)
    clock = clock_of(chat)
    clock.set(START)
    code = await code_now(chat, number)
    secret = (await activity(chat.conversation, number)).secret
    guesses = (f"{n:04d}" for n in range(20))
    wrong = [c for c in guesses if not activity_codes.accepts(secret, c, clock.now())]

    for guess in wrong[:WRONG_CODES]:
        assert "签到码不对" in await chat.say("1001", f"签到 {guess}")
    # The right code no longer helps the guesser; other members are not held up.
    assert "错误次数太多" in await chat.say("1001", f"签到 {code}")
    assert "签到成功" in await chat.say("1002", f"签到 {code}")
    clock.advance(minutes=10, seconds=1)
    assert "签到成功" in await chat.say("1001", f"签到 {await code_now(chat, number)}")


async def test_only_those_signed_up_sign_in_to_an_open_activity(chat: Chat) -> None:
    number = await publish(
        chat, "活动 其他 11月26日 15:00 1小时 名额5 对象:全体 操场 拔河比赛", by="9001"
    )
    await chat.say("1001", f"报名 {number}")
    clock_of(chat).set(START)
    code = await code_now(chat, number, organiser="9001")

    assert "签到成功" in await chat.say("1001", f"签到 {code}")
    assert "不包括你" in await chat.say("1002", f"签到 {code}")


# --- what attendance credits ----------------------------------------------------------


async def test_a_lecture_attended_adds_study_time_once_even_when_retried(chat: Chat) -> None:
    number = await publish(chat, "活动 党课 11月26日 15:00 90分钟 礼堂 党史学习")
    clock_of(chat).set(START)
    code = await code_now(chat, number)

    first = await chat.say("1001", f"签到 {code}", key="msg-1")
    again = await chat.say("1001", f"签到 {code}", key="msg-1")  # the platform's retry
    repeat = await chat.say("1001", f"签到 {code}", key="msg-2")  # the member's repeat

    assert "已记入今天学习 90 分钟，积分 +3" in first
    assert again == first
    assert "已签到过" in repeat
    mid = await member_id(chat.conversation, "1001")
    async with chat.conversation.sessions() as session:
        entries = list(await session.exec(select(StudyEntry)))
        points = list(await session.exec(select(PointsEntry)))
    assert [(e.member_id, e.day, e.minutes, e.activity_id) for e in entries] == [
        (mid, START.date(), 90, number)
    ]
    assert [(p.source, p.points) for p in points] == [("study", 3)]


async def test_lecture_study_counts_toward_the_goal_within_the_days_limit(chat: Chat) -> None:
    number = await publish(chat, "活动 培训 11月26日 15:00 2小时 夜校 安全培训")
    clock = clock_of(chat)
    clock.set(START - dt.timedelta(minutes=20))
    for _ in range(6):  # 23 hours of the day recorded already (the daily limit is 24)
        await chat.say("1001", "学习 230")
    clock.set(START)

    reply = await chat.say("1001", f"签到 {await code_now(chat, number)}")

    assert "已记入今天学习 60 分钟" in reply
    async with chat.conversation.sessions() as session:
        lecture = (
            await session.exec(select(StudyEntry).where(StudyEntry.activity_id == number))
        ).one()
    assert lecture.minutes == 24 * 60 - 6 * 230


async def test_a_volunteer_activity_credits_approved_hours(chat: Chat) -> None:
    number = await publish(chat, "活动 志愿活动 11月26日 15:00 3小时 志愿2小时 社区 清扫")
    clock_of(chat).set(START)

    reply = await chat.say("1001", f"签到 {await code_now(chat, number)}")

    assert "已认定志愿服务 2 小时，积分 +4" in reply
    async with chat.conversation.sessions() as session:
        entry = (await session.exec(select(VolunteerEntry))).one()
        audit = (
            await session.exec(select(AuditEntry).where(AuditEntry.action == "volunteer.approve"))
        ).one()
    organiser = await member_id(chat.conversation, "1003")
    assert (entry.minutes, entry.state, entry.reviewer_id, entry.activity_id) == (
        120,
        "approved",
        organiser,
        number,
    )
    assert (audit.door, audit.object_id) == ("system", str(entry.id))
    assert await count(chat.conversation, StudyEntry) == 0


async def test_meetings_credit_nothing_but_attendance(chat: Chat) -> None:
    number = await publish(chat)
    clock_of(chat).set(START)

    reply = await chat.say("1001", f"签到 {await code_now(chat, number)}")
    assert reply.endswith("——————\n签到成功：《学习新修订的条例》。")
    assert await count(chat.conversation, StudyEntry) == 0
    assert await count(chat.conversation, VolunteerEntry) == 0
    assert await count(chat.conversation, PointsEntry) == 0


# --- 补签 --------------------------------------------------------------------------------


async def test_the_organiser_signs_in_for_a_member_audited(chat: Chat) -> None:
    number = await publish(chat, "活动 党课 11月26日 15:00 1小时 礼堂 党史")
    clock = clock_of(chat)
    assert "还没有开始" in await chat.say("1003", f"补签 {number} 1001 手机没电")
    clock.set(START)

    reply = await chat.say("1003", f"补签 {number} 1001 手机没电")

    assert "已为 张三（1001）补签《党史》" in reply
    assert "已签到过" in await chat.say("1003", f"补签 {number} 1001 手机没电")
    mid = await member_id(chat.conversation, "1001")
    assert await present(chat.conversation, number) == {mid}
    async with chat.conversation.sessions() as session:
        row = (await session.exec(select(Attendance))).one()
        audit = (
            await session.exec(select(AuditEntry).where(AuditEntry.action == "activity.sign_in"))
        ).one()
    organiser = await member_id(chat.conversation, "1003")
    assert (row.reason, row.signed_in_by) == ("手机没电", organiser)
    assert (audit.actor, audit.door, audit.object_id) == ("王芳（1003）", "chat", str(number))
    assert await count(chat.conversation, StudyEntry, StudyEntry.member_id == mid) == 1


@pytest.mark.parametrize(
    ("who", "text", "answer"),
    [
        ("2002", "补签 {n} 1001 到场", "没有找到"),  # another branch's activity
        ("1003", "补签 {n} 2001 到场", "没有找到"),  # a member it does not expect
        ("1003", "补签 {n} 7777 到场", "没有找到"),  # nobody
        ("1003", "补签 {n} 1001", "请写上活动编号、工号和原因"),
    ],
)
async def test_sign_in_for_refusals(chat: Chat, who: str, text: str, answer: str) -> None:
    number = await publish(chat)
    clock_of(chat).set(START)

    assert answer in await chat.say(who, text.format(n=number))
    assert await count(chat.conversation, Attendance) == 0
    assert await count(chat.conversation, AuditEntry, AuditEntry.action == "activity.sign_in") == 0
