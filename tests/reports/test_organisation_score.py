"""组织生活 in the branch score: a hand-built December with every number worked out."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from bot.clock import FixedClock
from bot.reports.bulletins import month_report
from bot.reports.periods import parse_period
from bot.reports.scoring import PARTS, organisation
from bot.rules import ScoringRules
from data.db import transaction
from data.meeting_figures import MeetingFigures
from tests.conftest import SHANGHAI, Chat

PARTY_DAY = dt.datetime(2026, 12, 5, 15, 0, tzinfo=SHANGHAI)
COMMITTEE = dt.datetime(2026, 12, 10, 10, 0, tzinfo=SHANGHAI)


def number(reply: str) -> int:
    found = re.search(r"编号 (\d+)", reply)
    assert found is not None, reply
    return int(found.group(1))


async def sign_in(chat: Chat, activity: int, at: dt.datetime, *roster_ids: str) -> None:
    clock = chat.conversation.clock
    assert isinstance(clock, FixedClock)
    clock.set(at)
    code = re.search(r"签到码：(\d{4})", await chat.say("1003", f"签到码 {activity}"))
    assert code is not None
    for roster_id in roster_ids:
        assert "签到成功" in await chat.say(roster_id, f"签到 {code.group(1)}")


async def december(chat: Chat) -> dict[str, dict[str, float]]:
    async with transaction(chat.conversation.sessions) as session:
        report = await month_report(
            session, parse_period("2026-12"), chat.conversation.report_context
        )
    return {b.branch: b.parts for b in report.branches} | {
        f"{b.branch}:score": {"score": b.score or 0.0} for b in report.branches
    }


def test_the_part_is_half_meetings_held_half_attendance() -> None:
    rules = ScoringRules()
    # A whole month (worth 1): expected 4/12 general meetings, 1 committee, 1 group meeting,
    # 1 party day, 4/12 lectures. Held: the party day and the committee (each capped at 1),
    # none of the other three: (1 + 1 + 0 + 0 + 0) / 5 = 0.4.
    # Attendance: 6 expected, 1 on leave, 3 present: 3 / (6 - 1) = 0.6.
    held = MeetingFigures({"party_day": 1, "committee": 1}, expected=6, present=3, leave=1)
    assert organisation(held, rules, 1.0) == pytest.approx((0.4 + 0.6) / 2)
    # Two party days still count one month's worth; a quarter's general meeting in a month
    # is three times what is due, capped at 1: (1 + 0 + 0 + 1 + 0) / 5.
    more = MeetingFigures({"party_day": 2, "general_meeting": 1}, expected=4, present=4)
    assert organisation(more, rules, 1.0) == pytest.approx((2 / 5 + 1) / 2)
    # Nobody expected: attendance 0, not a division by zero.
    assert organisation(MeetingFigures(), rules, 1.0) == 0.0
    # A kind expected 0 times a year is left out of the mean.
    few = rules.model_copy(
        update={
            "general_meetings_per_year": 0,
            "group_meetings_per_year": 0,
            "lectures_per_year": 0,
        }
    )
    assert organisation(held, few, 1.0) == pytest.approx((1.0 + 0.6) / 2)


async def test_december_with_two_meetings_in_one_branch(chat: Chat) -> None:
    party_day = number(await chat.say("1003", "活动 主题党日 12月5日 15:00 90分钟 三楼 学习条例"))
    committee = number(await chat.say("1003", "活动 支委会 12月10日 10:00 1小时 二楼 工作部署"))
    await chat.say("1002", f"请假 {party_day} 出差")
    await sign_in(chat, party_day, PARTY_DAY, "1001", "1003")
    await sign_in(chat, committee, COMMITTEE, "1003")

    parts = await december(chat)

    # 第一党支部: held (party day 1 + committee 1 + 0 + 0 + 0) / 5 = 0.4; attendance: the
    # party day expects 3 (1 on leave, 2 present), the committee 3 (1 present):
    # 3 / (6 - 1) = 0.6. (0.4 + 0.6) / 2 = 0.5.
    assert parts["第一党支部"]["organisation"] == pytest.approx(0.5)
    # The other branches held nothing, expected nobody: 0.
    assert parts["第二党支部"]["organisation"] == 0.0
    assert parts["机关党支部"]["organisation"] == 0.0
    # The score is the weighted mean over every part, 组织生活 weighing 10.
    weights = ScoringRules().weights()
    one = parts["第一党支部"]
    expected = 100 * sum(weights[p] * one[p] for p in PARTS) / sum(weights.values())
    assert parts["第一党支部:score"]["score"] == round(expected, 1)


async def test_a_month_without_meetings_leaves_the_part_out(chat: Chat) -> None:
    # A training is no meeting: December has no 组织生活 to measure.
    training = number(await chat.say("1003", "活动 培训 12月5日 15:00 1小时 夜校 安全"))
    await sign_in(chat, training, PARTY_DAY, "1001")

    parts = await december(chat)

    assert "organisation" not in parts["第一党支部"]
    weights = ScoringRules().weights()
    one = parts["第一党支部"]
    measured = [p for p in PARTS if p in one]
    expected = 100 * sum(weights[p] * one[p] for p in measured) / sum(weights[p] for p in measured)
    assert parts["第一党支部:score"]["score"] == round(expected, 1)
