"""The reports as files: Markdown and HTML from templates, the workbook, the chart, the CLI."""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from matplotlib import font_manager, image
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner, Result

import bot.cli_reports
from bot.app import build_conversation
from bot.cli_reports import report_app
from bot.clock import FixedClock
from bot.conversation import Conversation
from bot.reports import chart
from bot.reports.bulletins import (
    Context,
    MonthLine,
    MonthReport,
    PeriodBranch,
    QuarterReport,
    YearReport,
    month_report,
    quarter_report,
    year_report,
)
from bot.reports.chart import write_png
from bot.reports.documents import PART_NAMES, render_html, render_markdown
from bot.reports.periods import parse_period
from bot.reports.scoring import PARTS, BranchScore
from bot.reports.spreadsheet import display_width, write_xlsx
from bot.rules import ScoringRules, load_rules
from bot.settings import Settings
from data import migrate
from data.db import create_engine, session_factory
from data.figures import MemberFigures
from tests.conftest import MORNING, ROSTER, SHANGHAI, Chat, make_settings, seed

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BOLD_NAME = "<b>粗体</b>支部"
PART_VALUES = dict(zip(PARTS, (0.9, 0.75, 0.5, 1.0, 0.25, 0.6, 0.8, 0.0, 0.7, 0.35), strict=True))
MEMBER_HEADER = (
    "工号",
    "姓名",
    "支部",
    "学习时长（分钟）",
    "学习时长（小时）",
    "学习天数",
    "达标天数",
    "最长连续达标天数",
    "志愿服务时长（小时）",
    "笔记字数",
    "周写一文（周）",
    "答题数",
    "答对数",
    "微党课阅读（次）",
    "积分",
)


# --- reports built by hand, for the renderers --------------------------------------------


def member(roster_id: str, name: str, branch: str, **figures: int) -> MemberFigures:
    return MemberFigures(int(roster_id), roster_id, name, 1, branch, 31, **figures)


MEMBERS = [
    member("0012", "张三", "第一党支部", minutes=3630, study_days=20, goal_days=14, points=88),
    member("1002", "李四", "第一党支部", minutes=600, volunteer_minutes=90, note_chars=3200),
    member("2001", "赵强", BOLD_NAME, minutes=45, quiz_answered=4, quiz_correct=3, points=7),
]


def month_sample() -> MonthReport:
    branches = [
        BranchScore(1, "第一党支部", 2, dict(PART_VALUES), 85.2, 1),
        BranchScore(2, BOLD_NAME, 1, {part: 0.5 for part in PARTS}, 50.0, 2),
        BranchScore(3, "空支部", 0),
    ]
    return MonthReport(parse_period("2026-10"), branches, MEMBERS, ScoringRules().weights())


def quarter_sample() -> QuarterReport:
    branches = [
        PeriodBranch("第二党支部", 2, [70.0, None, 80.0], 75.0, 1, 3, 60.0),
        PeriodBranch("第一党支部", 3, [70.0, 72.0, 74.0], 72.0, 2, 1, 75.0),
        PeriodBranch("机关党支部", 4, [65.0, 65.0, 65.0], 65.0, 3, 3, 65.0),
        PeriodBranch("新支部", 1, [None, None, 50.0], 50.0, 4),
        PeriodBranch("空支部", 0, [None, None, None]),
    ]
    return QuarterReport(parse_period("2026Q3"), branches, branches[0], branches[0], MEMBERS)


def year_sample() -> YearReport:
    branches = [
        PeriodBranch("第二党支部", 2, [70.0] * 12, 70.0, 1),
        PeriodBranch(BOLD_NAME, 1, [60.0] * 11 + [None], 60.0, 2),
        PeriodBranch("空支部", 0, [None] * 12),
    ]
    months = [
        MonthLine(f"2026-{n:02d}", 10.0 * n, 1.5, 60.0 + n if n > 6 else None) for n in range(1, 13)
    ]
    return YearReport(parse_period("2026"), 3, 71.25, 1.5, 3200, 9, MEMBERS[:2], branches, months)


def in_order(text: str, names: list[str]) -> bool:
    positions = [text.index(name) for name in names]
    return positions == sorted(positions)


def table_of(text: str) -> str:
    """The part of a document from its first table header on."""
    return text[text.index("名次") :]


def test_every_part_has_one_chinese_name() -> None:
    assert tuple(PART_NAMES) == PARTS
    assert tuple(ScoringRules().weights()) == PARTS


# --- Markdown and HTML --------------------------------------------------------------------


def test_month_markdown_ranks_branches_with_their_parts() -> None:
    text = render_markdown(month_sample())

    assert text.startswith("# 2026年10月 支部评分\n")
    assert "| 名次 | 支部 | 人数 | 得分 | " + " | ".join(PART_NAMES.values()) + " |" in text
    assert "| 1 | 第一党支部 | 2 | 85.2 | 90% | 75% | 50% | 100% | 25% | 60% | 80% | 0% |" in text
    assert "| 2 | &lt;b>粗体&lt;/b>支部 | 1 | 50.0 | 50% |" in text
    assert "| — | 空支部 | 0 | — | — | — | — | — | — | — | — | — |" in text
    assert in_order(text, ["第一党支部", "粗体", "空支部"])
    assert "学习参与率 20、日均学习时长 20、达标天数 15" in text


def test_quarter_markdown_shows_the_moves_the_top_and_the_most_improved() -> None:
    text = render_markdown(quarter_sample())

    assert text.startswith("# 2026年第3季度 支部通报\n")
    assert "本季度第一：**第二党支部**（月均得分 75.0）" in text
    assert "进步最大：**第二党支部**（较上季度 +15.0 分，名次变化 ↑2）" in text
    assert "| 名次 | 支部 | 人数 | 7月 | 8月 | 9月 | 月均得分 | 上季度名次 | 名次变化 |" in text
    assert "| 1 | 第二党支部 | 2 | 70.0 | — | 80.0 | 75.0 | 3 | ↑2 |" in text
    assert "| 2 | 第一党支部 | 3 | 70.0 | 72.0 | 74.0 | 72.0 | 1 | ↓1 |" in text
    assert "| 3 | 机关党支部 | 4 | 65.0 | 65.0 | 65.0 | 65.0 | 3 | — |" in text
    assert "| 4 | 新支部 | 1 | — | — | 50.0 | 50.0 | — | 新 |" in text
    assert "| — | 空支部 | 0 | — | — | — | — | — | — |" in text
    table = table_of(text)
    assert in_order(table, ["第二党支部", "第一党支部", "机关党支部", "新支部", "空支部"])


def test_quarter_without_a_most_improved_names_only_the_top() -> None:
    report = quarter_sample()
    report.most_improved = None

    text = render_markdown(report)

    assert "本季度第一" in text
    assert "进步最大" not in text


def test_year_markdown_gives_totals_top_members_branches_and_months() -> None:
    text = render_markdown(year_sample())

    assert text.startswith("# 2026年 年终总结\n")
    for line in (
        "- 参与党员：3 人",
        "- 学习时长：71.2 小时",
        "- 志愿服务时长：1.5 小时",
        "- 学习笔记：3,200 字",
        "- 微党课阅读：9 次",
        "| 1 | 张三 | 第一党支部 | 88 | 60.5 |",
        "| 2 | 李四 | 第一党支部 | 0 | 10 |",
        "| 1 | 第二党支部 | 2 | 70.0 |",
        "| — | 空支部 | 0 | — |",
        "| 2026-01 | 10.0 | 1.5 | — |",
        "| 2026-12 | 120.0 | 1.5 | 72.0 |",
    ):
        assert line in text
    assert in_order(text, ["## 全年合计", "## 优秀党员", "## 支部排名", "## 逐月情况"])


@pytest.mark.parametrize("build", [month_sample, quarter_sample, year_sample])
def test_html_is_a_phone_page_with_the_same_content(build: Any) -> None:
    report = build()
    page = render_html(report)

    assert page.startswith("<!DOCTYPE html>")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "<style>" in page
    heading = render_markdown(report).splitlines()[0].removeprefix("# ")
    assert f"<h1>{heading}</h1>" in page
    ranked = [b.branch for b in report.branches if b.rank is not None]
    assert in_order(table_of(page), [html.escape(name) for name in ranked])


def test_html_escapes_names() -> None:
    month, year = render_html(month_sample()), render_html(year_sample())

    for page in (month, year):
        assert "&lt;b&gt;粗体&lt;/b&gt;支部" in page
        assert "<b>粗体" not in page
    assert '<td class="name">&lt;b&gt;粗体&lt;/b&gt;支部</td>' in month
    assert '<td class="num"><strong>85.2</strong></td><td class="num">90%</td>' in month
    assert "".join(f"<th>{name}</th>" for name in PART_NAMES.values()) in month


def test_html_marks_moves_up_and_down() -> None:
    page = render_html(quarter_sample())

    assert '<td class="num up">↑2</td>' in page
    assert '<td class="num down">↓1</td>' in page
    assert "进步最大：<strong>第二党支部</strong>" in page


# --- the workbook -------------------------------------------------------------------------


def header(sheet: Worksheet) -> tuple[Any, ...]:
    return tuple(cell.value for cell in sheet[1])


def assert_table_sheet(sheet: Worksheet, columns: int, rows: int) -> None:
    """Bold frozen header, an autofilter over the table, widths that fit the header."""
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:{sheet.cell(1, columns).column_letter}{rows + 1}"
    assert (sheet.max_column, sheet.max_row) == (columns, rows + 1)
    for cell in sheet[1]:
        assert cell.font.b is True
        width = sheet.column_dimensions[cell.column_letter].width
        assert width >= display_width(str(cell.value))


def assert_member_rows(sheet: Worksheet, people: list[MemberFigures], offset: int = 0) -> None:
    for row, person in enumerate(people, start=2):
        cells = [sheet.cell(row, offset + column) for column in range(1, len(MEMBER_HEADER) + 1)]
        roster_id, name, branch, minutes, hours, *_rest, points = cells
        assert (roster_id.value, roster_id.number_format) == (person.roster_id, "@")
        assert (name.value, branch.value) == (person.name, person.branch)
        assert (minutes.value, minutes.number_format) == (person.minutes, "0")
        assert hours.value == pytest.approx(person.minutes / 60)
        assert hours.number_format == "0.0"
        assert isinstance(hours.value, int | float) and isinstance(points.value, int)
        values = [cell.value for cell in cells]
        assert values[5:] == [
            person.study_days,
            person.goal_days,
            person.longest_streak,
            pytest.approx(person.volunteer_minutes / 60),
            person.note_chars,
            person.article_weeks,
            person.quiz_answered,
            person.quiz_correct,
            person.lessons_read,
            person.points,
        ]
        assert cells[9].number_format == "#,##0"


def assert_branch_score_rows(sheet: Worksheet, branches: list[BranchScore]) -> None:
    assert header(sheet) == ("名次", "支部", "人数", "得分", *PART_NAMES.values())
    assert_table_sheet(sheet, 4 + len(PARTS), len(branches))
    for row, branch in enumerate(branches, start=2):
        rank, name, members, score, *parts = (cell for cell in sheet[row])
        assert (rank.value, name.value, members.value) == (
            branch.rank,
            branch.branch,
            branch.members,
        )
        assert score.value == branch.score
        assert (rank.number_format, score.number_format) == ("0", "0.0")
        for cell, part in zip(parts, PARTS, strict=True):
            assert cell.number_format == "0.0%"
            if branch.parts and part == "grading" and part not in branch.parts:  # not given yet
                assert (cell.value, cell.data_type) == ("待评", "s")
                continue
            if branch.parts and part not in branch.parts:  # 组织生活 without meetings: empty
                assert cell.value is None
                continue
            assert cell.value == (pytest.approx(branch.parts[part]) if branch.parts else None)
            assert cell.data_type == "n"
    ranks = [sheet.cell(row, 1).value for row in range(2, sheet.max_row + 1)]
    scored = [rank for rank in ranks if rank is not None]
    assert scored == list(range(1, len(scored) + 1))
    assert ranks[len(scored) :] == [None] * (len(ranks) - len(scored))


def assert_period_branch_rows(sheet: Worksheet, branches: list[PeriodBranch], months: int) -> None:
    for row, branch in enumerate(branches, start=2):
        values = [cell.value for cell in sheet[row]]
        assert values[: 4 + months] == [
            branch.rank,
            branch.branch,
            branch.members,
            *branch.monthly,
            branch.score,
        ]
        assert all(cell.number_format == "0.0" for cell in sheet[row][3 : 4 + months])


def test_month_workbook_cell_by_cell(tmp_path: Path) -> None:
    report = month_sample()
    path = tmp_path / "2026-10.xlsx"

    write_xlsx(report, path)

    book = load_workbook(path)
    assert book.sheetnames == ["支部评分", "党员"]
    scores, people = book["支部评分"], book["党员"]
    assert_branch_score_rows(scores, report.branches)
    assert scores["D2"].value == 85.2 and scores["E2"].value == 0.9
    assert scores["B3"].value == BOLD_NAME
    # CJK characters count double: 7 ASCII + 4 CJK = 15 columns, plus the filter button.
    assert display_width(BOLD_NAME) == 15
    assert scores.column_dimensions["B"].width == 17
    assert header(people) == MEMBER_HEADER
    assert_table_sheet(people, len(MEMBER_HEADER), len(report.members))
    assert_member_rows(people, report.members)
    assert people["A2"].value == "0012"  # a text cell keeps the leading zero
    assert people["E2"].value == pytest.approx(60.5)


def test_quarter_workbook_has_the_bulletin_sheet(tmp_path: Path) -> None:
    report = quarter_sample()
    path = tmp_path / "2026Q3.xlsx"

    write_xlsx(report, path)

    book = load_workbook(path)
    assert book.sheetnames == ["季度通报", "党员"]
    sheet = book["季度通报"]
    assert header(sheet) == (
        "名次",
        "支部",
        "人数",
        "7月",
        "8月",
        "9月",
        "月均得分",
        "上季度名次",
        "名次变化",
        "上季度得分",
        "得分变化",
    )
    assert_table_sheet(sheet, 11, len(report.branches))
    assert_period_branch_rows(sheet, report.branches, 3)
    for row, branch in enumerate(report.branches, start=2):
        previous, change, previous_score, score_change = (cell for cell in sheet[row][7:])
        assert previous.value == branch.previous_rank
        assert change.value == branch.rank_change
        assert previous_score.value == branch.previous_score
        assert score_change.value == branch.score_change
        assert change.number_format == '"↑"0;"↓"0;"—"'
    assert [sheet.cell(row, 9).value for row in range(2, 7)] == [2, -1, 0, None, None]
    assert_member_rows(book["党员"], report.members)


def test_year_workbook_has_totals_months_branches_and_top_members(tmp_path: Path) -> None:
    report = year_sample()
    path = tmp_path / "2026.xlsx"

    write_xlsx(report, path)

    book = load_workbook(path)
    assert book.sheetnames == ["年度汇总", "月度", "支部排名", "优秀党员"]
    totals = book["年度汇总"]
    assert [[cell.value for cell in row] for row in totals.iter_rows()] == [
        ["项目", "数值"],
        ["参与党员（人）", 3],
        ["学习时长（小时）", 71.25],
        ["志愿服务时长（小时）", 1.5],
        ["学习笔记（字）", 3200],
        ["微党课阅读（次）", 9],
    ]
    assert [totals.cell(row, 2).number_format for row in range(2, 7)] == [
        "0",
        "0.0",
        "0.0",
        "#,##0",
        "0",
    ]
    months = book["月度"]
    assert header(months) == ("月份", "学习时长（小时）", "志愿服务时长（小时）", "支部平均得分")
    assert_table_sheet(months, 4, 12)
    assert [[cell.value for cell in row] for row in months.iter_rows(min_row=2)] == [
        [line.month, line.study_hours, line.volunteer_hours, line.mean_score]
        for line in report.months
    ]
    branches = book["支部排名"]
    assert header(branches)[-1] == "月均得分"
    assert_table_sheet(branches, 16, len(report.branches))
    assert_period_branch_rows(branches, report.branches, 12)
    top = book["优秀党员"]
    assert header(top) == ("名次", *MEMBER_HEADER)
    assert [top.cell(row, 1).value for row in (2, 3)] == [1, 2]
    assert_member_rows(top, report.top_members, offset=1)


# --- the chart ----------------------------------------------------------------------------


def png_size(path: Path) -> tuple[int, int]:
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    pixels = image.imread(path)
    return pixels.shape[1], pixels.shape[0]


def many_branches(count: int) -> MonthReport:
    report = month_sample()
    report.branches = [
        BranchScore(n, f"生产运行第{n}党支部", 20, dict(PART_VALUES), 99.0 - n, n)
        for n in range(1, count + 1)
    ]
    return report


@pytest.mark.parametrize("build", [month_sample, quarter_sample, year_sample])
def test_chart_is_a_phone_sized_png(build: Any, tmp_path: Path) -> None:
    path = tmp_path / "chart.png"

    write_png(build(), path)

    width, height = png_size(path)
    assert width == 1080
    assert 300 <= height <= 1200


def test_chart_grows_with_the_branches(tmp_path: Path) -> None:
    few, many = tmp_path / "few.png", tmp_path / "many.png"

    write_png(many_branches(5), few)
    write_png(many_branches(37), many)

    (few_width, few_height), (many_width, many_height) = png_size(few), png_size(many)
    assert few_width == many_width == 1080
    assert many_height > few_height
    # 37 bars of at least 60 px each: a name's line stays readable on a phone.
    assert many_height >= 37 * 60 and many_height <= 4000


def test_chart_of_no_branches_still_renders(tmp_path: Path) -> None:
    report = month_sample()
    report.branches = []
    path = tmp_path / "empty.png"

    write_png(report, path)

    assert png_size(path)[0] == 1080


@pytest.fixture
def no_cjk_font(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(chart, "CJK_FONTS", ("No Such Font Sans",))
    chart.cjk_font.cache_clear()
    yield
    chart.cjk_font.cache_clear()


@pytest.mark.usefixtures("no_cjk_font")
def test_chart_without_a_cjk_font_warns_once_and_renders(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.reports.chart"):
        write_png(month_sample(), tmp_path / "a.png")
        write_png(quarter_sample(), tmp_path / "b.png")

    warnings = [r for r in caplog.records if r.name == "bot.reports.chart"]
    assert len(warnings) == 1
    assert "fonts-wqy-microhei" in warnings[0].getMessage()
    assert png_size(tmp_path / "a.png")[0] == 1080


def test_installed_cjk_font_is_found() -> None:
    # This machine and CI install fonts-wqy-microhei (see README).
    assert chart.cjk_font() in chart.CJK_FONTS


def test_a_font_installed_after_matplotlib_cached_its_list_is_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """matplotlib's font list, cached on disk before the font was installed, lacks it."""
    manager = font_manager.fontManager
    chart.cjk_font()  # the list now has the font's file, if it did not already
    files = {entry.fname for entry in manager.ttflist if entry.name in chart.CJK_FONTS}
    stale = [entry for entry in manager.ttflist if entry.fname not in files]
    monkeypatch.setattr(manager, "ttflist", stale)
    chart.cjk_font.cache_clear()
    try:
        assert chart.cjk_font() in chart.CJK_FONTS
    finally:
        chart.cjk_font.cache_clear()


# --- reports computed from the database (SQLite and PostgreSQL) --------------------------

AUGUST = dt.datetime(2026, 8, 3, 9, 0, tzinfo=SHANGHAI)
NOTE = "笔记 " + "学" * 850


async def history(conversation: Conversation, clock: FixedClock) -> None:
    """Members join in August; 第二党支部 leads the third quarter, 第一党支部 the fourth."""
    talk = Chat(conversation)
    await seed(conversation)
    for row in ROSTER:
        await talk.bind(row.member_id)
    await talk.say("2001", "学习 120")
    clock.set(MORNING)
    for roster_id, text in [
        ("1001", "学习 120"),
        ("1001", NOTE),
        ("1001", "微党课"),
        ("1001", "答 A"),
        ("1002", "学习 30"),
        ("2001", "学习 60"),
    ]:
        await talk.say(roster_id, text)
    reply = await talk.say("2001", "志愿 2 陪老人")
    entry = re.search(r"编号 (\d+)", reply)
    assert entry is not None, reply
    await talk.say("2002", f"通过 {entry[1]}")
    clock.advance(days=1)
    await talk.say("1001", "学习 120")


async def computed(
    conversation: Conversation, settings: Settings
) -> tuple[MonthReport, QuarterReport, YearReport]:
    context = Context(settings.zone, settings.daily_goal_minutes, load_rules())
    async with conversation.sessions() as session:
        month = await month_report(session, parse_period("2026-11"), context)
        quarter = await quarter_report(session, parse_period("2026Q4"), context)
        year = await year_report(session, parse_period("2026"), context)
    return month, quarter, year


async def test_reports_from_the_database_round_trip_through_the_files(
    settings: Settings, engine: AsyncEngine, tmp_path: Path
) -> None:
    clock = FixedClock(AUGUST)
    conversation = build_conversation(settings, clock, engine)
    await history(conversation, clock)

    month, quarter, year = await computed(conversation, settings)

    assert month.branches[0].branch == "第一党支部"
    zhang = next(m for m in month.members if m.roster_id == "1001")
    assert (zhang.minutes, zhang.goal_days, zhang.longest_streak) == (240, 2, 2)
    assert next(m for m in month.members if m.roster_id == "2001").volunteer_minutes == 120
    assert quarter.top is not None and quarter.top.branch == "第一党支部"
    # In the third quarter it shared the second place at 0.0 with 机关党支部 (ties share a
    # rank: 1, 2, 2); first now.
    assert (quarter.top.previous_rank, quarter.top.rank_change) == (2, 1)
    assert year.study_hours == pytest.approx((120 + 240 + 30 + 60) / 60)

    write_xlsx(month, tmp_path / "month.xlsx")
    write_xlsx(quarter, tmp_path / "quarter.xlsx")
    write_xlsx(year, tmp_path / "year.xlsx")
    book = load_workbook(tmp_path / "month.xlsx")
    assert_branch_score_rows(book["支部评分"], month.branches)
    assert_member_rows(book["党员"], month.members)
    book = load_workbook(tmp_path / "quarter.xlsx")
    assert_period_branch_rows(book["季度通报"], quarter.branches, 3)
    assert [c.value for c in book["季度通报"]["I"][1:]] == [b.rank_change for b in quarter.branches]
    book = load_workbook(tmp_path / "year.xlsx")
    assert book["年度汇总"]["B3"].value == pytest.approx(year.study_hours)
    assert_period_branch_rows(book["支部排名"], year.branches, 12)
    assert_member_rows(book["优秀党员"], year.top_members, offset=1)

    text = render_markdown(quarter)
    assert "本季度第一：**第一党支部**" in text
    assert "| 1 | 第一党支部 | 3 |" in text and "| ↑1 |" in text
    write_png(year, tmp_path / "year.png")
    assert png_size(tmp_path / "year.png")[0] == 1080


# --- the command line (SQLite) ------------------------------------------------------------


AFTER_THE_YEAR = dt.datetime(2027, 1, 10, 9, 0, tzinfo=SHANGHAI)
CLI_CLOCK = FixedClock(AFTER_THE_YEAR)


@pytest.fixture
def cli_env(sqlite_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """A seeded SQLite database, a tmp working directory and no QIYI_ settings from outside;
    the command's clock reads `CLI_CLOCK` (January 2027 unless a test moves it)."""
    CLI_CLOCK.set(AFTER_THE_YEAR)
    monkeypatch.setattr(bot.cli_reports, "SystemClock", lambda zone: CLI_CLOCK)
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("QIYI_") and name != "QIYI_TEST_DATABASE_URL":
            monkeypatch.delenv(name)

    async def prepare() -> None:
        engine = create_engine(sqlite_url)
        await migrate.upgrade(engine)
        clock = FixedClock(AUGUST)
        await history(build_conversation(make_settings(sqlite_url), clock, engine), clock)
        await engine.dispose()

    asyncio.run(prepare())
    return {"QIYI_DATABASE_URL": sqlite_url, "QIYI_SCHEDULER": "off"}


def invoke(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(report_app, list(args), env=env)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_cli_writes_markdown_workbook_and_chart_by_default(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "out"

    result = ok(invoke(cli_env, "month", "2026-11", "--out", str(folder)))

    assert files(folder) == ["2026-11.md", "2026-11.png", "2026-11.xlsx"]
    assert result.output.splitlines() == [
        "2026年11月 支部评分",
        *(str(folder / f"2026-11.{ext}") for ext in ("md", "xlsx", "png")),
    ]
    text = (folder / "2026-11.md").read_text(encoding="utf-8")
    assert text.startswith("# 2026年11月 支部评分")
    assert load_workbook(folder / "2026-11.xlsx")["支部评分"]["B2"].value == "第一党支部"
    assert png_size(folder / "2026-11.png")[0] == 1080


async def test_cli_cuts_the_month_in_progress_at_today_and_says_so(
    cli_env: dict[str, str], tmp_path: Path, sqlite_url: str
) -> None:
    """On Nov 26 the month's figures are those through the 26th (what `排行` shows), labelled
    截至今日 in the command's output and the report's heading."""
    CLI_CLOCK.set(dt.datetime(2026, 11, 26, 20, 0, tzinfo=SHANGHAI))
    folder = tmp_path / "out"

    result = await asyncio.to_thread(
        invoke, cli_env, "month", "2026-11", "-f", "md", "--out", str(folder)
    )

    assert ok(result).output.splitlines()[0] == "2026年11月 支部评分（截至今日：11月26日）"
    text = (folder / "2026-11.md").read_text(encoding="utf-8")
    assert text.startswith("# 2026年11月 支部评分（截至今日：11月26日）")
    engine = create_engine(sqlite_url)
    context = Context(SHANGHAI, make_settings(sqlite_url).daily_goal_minutes, load_rules())
    november = parse_period("2026-11")
    async with session_factory(engine)() as session:
        so_far = await month_report(session, november, context, dt.date(2026, 11, 26))
        whole = await month_report(session, november, context)
    await engine.dispose()
    assert so_far.through == dt.date(2026, 11, 26) and whole.through is None
    # The figures differ (30 days against 26), and the file has the month so far's.
    assert so_far.branches[0].score != whole.branches[0].score
    assert f"| 1 | 第一党支部 | 3 | {so_far.branches[0].score:.1f} |" in text


def test_cli_writes_into_reports_by_default(cli_env: dict[str, str], tmp_path: Path) -> None:
    ok(invoke(cli_env, "year", "2026"))

    assert files(tmp_path / "reports") == ["2026.md", "2026.png", "2026.xlsx"]


def test_cli_html_only(cli_env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "out"

    ok(invoke(cli_env, "quarter", "2026q4", "--format", "html", "--out", str(folder)))

    assert files(folder) == ["2026Q4.html"]
    page = (folder / "2026Q4.html").read_text(encoding="utf-8")
    assert "<h1>2026年第4季度 支部通报</h1>" in page


@pytest.mark.parametrize("given", [["--format", "md,png"], ["--format", "md", "-f", "png"]])
def test_cli_formats_repeat_or_separate_with_commas(
    cli_env: dict[str, str], tmp_path: Path, given: list[str]
) -> None:
    ok(invoke(cli_env, "quarter", "2026Q4", *given, "--out", str(tmp_path / "out")))

    assert files(tmp_path / "out") == ["2026Q4.md", "2026Q4.png"]


@pytest.mark.parametrize(
    ("command", "period"),
    [
        ("month", "2026-13"),
        ("month", "2026Q3"),
        ("quarter", "2026Q5"),
        ("quarter", "2026-10"),
        ("year", "26"),
        ("year", "2026-10"),
    ],
)
def test_cli_refuses_a_bad_period(
    cli_env: dict[str, str], tmp_path: Path, command: str, period: str
) -> None:
    result = invoke(cli_env, command, period, "--out", str(tmp_path / "out"))

    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert period.upper() in result.output
    assert not (tmp_path / "out").exists()


def test_cli_refuses_an_unknown_format(cli_env: dict[str, str], tmp_path: Path) -> None:
    result = invoke(cli_env, "month", "2026-11", "--format", "md,pdf", "--out", str(tmp_path / "o"))

    assert result.exit_code == 1
    assert "pdf" in result.output
    assert not (tmp_path / "o").exists()
