"""The month's workbook and report with its activities: a hand-built November of four
activities in two branches, written by `qiyi report month` and read back with openpyxl —
the 组织生活 table, each activity's counts and its attendance by name, every number worked
out by hand; the Markdown and HTML reports show the 组织生活 table."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from typer.testing import CliRunner

from bot.cli_reports import report_app
from bot.clock import FixedClock
from tests.conftest import SHANGHAI, Chat

PARTY_DAY = dt.datetime(2026, 11, 26, 15, 0, tzinfo=SHANGHAI)
COMMITTEE = dt.datetime(2026, 11, 27, 10, 0, tzinfo=SHANGHAI)
TRAINING = dt.datetime(2026, 11, 28, 19, 0, tzinfo=SHANGHAI)
LECTURE = dt.datetime(2026, 11, 29, 15, 0, tzinfo=SHANGHAI)


def number(reply: str) -> int:
    found = re.search(r"编号 (\d+)", reply)
    assert found is not None, reply
    return int(found.group(1))


async def sign_in(chat: Chat, organiser: str, activity: int, at: dt.datetime, *who: str) -> None:
    clock = chat.conversation.clock
    assert isinstance(clock, FixedClock)
    clock.set(at)
    code = re.search(r"签到码：(\d{4})", await chat.say(organiser, f"签到码 {activity}"))
    assert code is not None
    for roster_id in who:
        reply = await chat.say(roster_id, f"签到 {activity} {code.group(1)}")
        assert "签到成功" in reply, reply


async def november(chat: Chat) -> dict[str, int]:
    """第一党支部 (1001 张三, 1002 李四, 1003 王芳): a 主题党日 — 李四 on leave, 张三 and
    王芳 present — and a 支委会 only 王芳 attends. 第二党支部 (2001 赵强, 2002 陈静): a 党课,
    赵强 on leave, 陈静 present. And an open 培训 for everyone (no meeting): 张三 and 赵强
    sign up, 赵强 comes."""
    found = {
        "party_day": number(
            await chat.say("1003", "活动 主题党日 11月26日 15:00 90分钟 三楼 学习条例")
        ),
        "committee": number(await chat.say("1003", "活动 支委会 11月27日 10:00 1小时 二楼 部署")),
        "training": number(
            await chat.say("9001", "活动 培训 11月28日 19:00 2小时 名额2 对象:全体 夜校 安全")
        ),
        "lecture": number(await chat.say("2002", "活动 党课 11月29日 15:00 1小时 礼堂 党史")),
    }
    assert "请假" in await chat.say("1002", f"请假 {found['party_day']} 出差")
    assert "请假" in await chat.say("2001", f"请假 {found['lecture']} 培训")
    for roster_id in ("1001", "2001"):
        assert "报名成功" in await chat.say(roster_id, f"报名 {found['training']}")
    await sign_in(chat, "1003", found["party_day"], PARTY_DAY, "1001", "1003")
    await sign_in(chat, "1003", found["committee"], COMMITTEE, "1003")
    await sign_in(chat, "9001", found["training"], TRAINING, "2001")
    await sign_in(chat, "2002", found["lecture"], LECTURE, "2002")
    return found


def rows_of(book: Any, title: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in book[title].iter_rows(values_only=True)]


async def test_the_months_workbook_has_organisational_life_and_a_sheet_per_activity(
    chat: Chat, database_url: str, tmp_path: Path
) -> None:
    found = await november(chat)
    env = {"QIYI_DATABASE_URL": database_url, "QIYI_SCHEDULER": "off"}
    folder = tmp_path / "reports"

    result = await asyncio.to_thread(
        CliRunner().invoke,
        report_app,
        ["month", "2026-11", "-f", "md,html,xlsx", "--out", str(folder)],
        env=env,
    )

    assert result.exit_code == 0, result.output
    book = load_workbook(folder / "2026-11.xlsx")
    party_day, committee = found["party_day"], found["committee"]
    training, lecture = found["training"], found["lecture"]
    assert book.sheetnames == [
        "支部评分",
        "党员",
        "组织生活",
        "活动出勤",
        f"活动{party_day} 主题党日",
        f"活动{committee} 支委会",
        f"活动{training} 培训",
        f"活动{lecture} 党课",
    ]
    # Meetings held by kind (大会, 支委会, 小组会, 主题党日, 党课), attendances expected,
    # present, on leave, and present / (expected - leave):
    # 第一党支部: 3 + 3 expected, 2 + 1 present, 1 on leave: 3 / 5 = 0.6.
    # 第二党支部: 2 expected, 1 present, 1 on leave: 1 / 1 = 1. 机关: nothing, no rate.
    life = rows_of(book, "组织生活")
    assert life[0] == (
        "支部",
        "支部党员大会",
        "支委会",
        "党小组会",
        "主题党日",
        "党课",
        "应到（人次）",
        "实到（人次）",
        "请假（人次）",
        "出勤率",
    )
    assert life[1:] == [
        ("机关党支部", 0, 0, 0, 0, 0, 0, 0, 0, None),
        ("第一党支部", 0, 1, 0, 1, 0, 6, 3, 1, 0.6),
        ("第二党支部", 0, 0, 0, 0, 1, 2, 1, 1, 1.0),
    ]
    assert book["组织生活"]["J3"].number_format == "0.0%"
    counts = [(row[0], row[1], row[5], row[6], row[7], row[8]) for row in rows_of(book, "活动出勤")]
    assert counts == [
        ("编号", "类型", "应到", "实到", "请假", "缺席"),
        (party_day, "主题党日", 3, 2, 1, 0),
        (committee, "支委会", 3, 1, 0, 2),
        (training, "培训", 2, 1, 0, 1),  # those who signed up
        (lecture, "党课", 2, 1, 1, 0),
    ]
    assert rows_of(book, "活动出勤")[1][3] == "2026-11-26 15:00—16:30"
    assert rows_of(book, f"活动{party_day} 主题党日") == [
        ("工号", "姓名", "支部", "出勤"),
        ("1001", "张三", "第一党支部", "到"),
        ("1002", "李四", "第一党支部", "请假"),
        ("1003", "王芳", "第一党支部", "到"),
    ]
    assert rows_of(book, f"活动{committee} 支委会")[1:] == [
        ("1001", "张三", "第一党支部", "缺席"),
        ("1002", "李四", "第一党支部", "缺席"),
        ("1003", "王芳", "第一党支部", "到"),
    ]
    assert rows_of(book, f"活动{training} 培训")[1:] == [
        ("1001", "张三", "第一党支部", "缺席"),
        ("2001", "赵强", "第二党支部", "到"),
    ]
    assert rows_of(book, f"活动{lecture} 党课")[1:] == [
        ("2001", "赵强", "第二党支部", "请假"),
        ("2002", "陈静", "第二党支部", "到"),
    ]
    markdown = (folder / "2026-11.md").read_text(encoding="utf-8")
    assert "## 组织生活" in markdown
    assert "| 第一党支部 | 0 | 1 | 0 | 1 | 0 | 6 | 3 | 1 | 60% |" in markdown
    assert "| 第二党支部 | 0 | 0 | 0 | 0 | 1 | 2 | 1 | 1 | 100% |" in markdown
    assert "| 机关党支部 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | — |" in markdown
    assert "本月活动 4 次" in markdown
    html = (folder / "2026-11.html").read_text(encoding="utf-8")
    assert "<h2>组织生活</h2>" in html
    assert (
        '<tr><td class="name">第一党支部</td><td class="num">0</td><td class="num">1</td>'
        '<td class="num">0</td><td class="num">1</td><td class="num">0</td>'
        '<td class="num">6</td><td class="num">3</td><td class="num">1</td>'
        '<td class="num">60%</td></tr>'
    ) in html
