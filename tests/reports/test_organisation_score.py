"""组织生活 in the branch score: a hand-built December with every number worked out."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli_reports import report_app
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
    # The score is the weighted mean over every part given, 组织生活 weighing 10 (the
    # office's grade is 待评: left out, its weight too).
    weights = ScoringRules().weights()
    one = parts["第一党支部"]
    assert "grading" not in one
    given = [p for p in PARTS if p in one]
    assert len(given) == len(PARTS) - 1
    expected = 100 * sum(weights[p] * one[p] for p in given) / sum(weights[p] for p in given)
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


async def test_the_months_attendance_sheets_by_name(
    chat: Chat, database_url: str, tmp_path: Path
) -> None:
    party_day = number(await chat.say("1003", "活动 主题党日 12月5日 15:00 90分钟 三楼 学习条例"))
    await chat.say("1002", f"请假 {party_day} 出差")
    await sign_in(chat, party_day, PARTY_DAY, "1003")
    assert "已为 张三（1001）补签" in await chat.say("1003", f"补签 {party_day} 1001 手机没电")
    env = {"QIYI_DATABASE_URL": database_url, "QIYI_SCHEDULER": "off"}
    out = tmp_path / "dec.md"

    result = await asyncio.to_thread(
        CliRunner().invoke, report_app, ["activities", "2026-12", "--out", str(out)], env=env
    )

    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out)
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# 2026年12月 组织生活与活动")
    assert f"## 主题党日《学习条例》（编号 {party_day}）" in text
    assert "应到 3 人，实到 2 人，请假 1 人，缺席 0 人。" in text
    assert "| 1001 | 张三 | 第一党支部 | 到 |" in text
    assert "| 1002 | 李四 | 第一党支部 | 请假 |" in text
    assert "| 1003 | 王芳 | 第一党支部 | 到 |" in text
    assert "| 2001 |" not in text
    # 组织生活 by branch: one party day held; 3 expected, 2 present, 1 on leave.
    assert "| 第一党支部 | 0 | 0 | 0 | 1 | 0 | 3 | 2 | 1 |" in text
    assert "| 第二党支部 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 |" in text
