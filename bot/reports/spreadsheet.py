"""The reports as an Excel workbook: what the party office sorts, filters and sums.

Every figure is a number cell with a number format (percentages are fractions shown as %),
never a formatted string, so the office can compute with it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from bot.reports.activity_sheets import KINDS, ActivitiesReport, Sheet
from bot.reports.bulletins import MonthReport, QuarterReport, YearReport
from bot.reports.documents import PART_NAMES, PENDING, Report, heading, score_label
from bot.reports.periods import ReportPeriod
from bot.reports.scoring import GRADING, BranchScore
from bot.sheets import write_cell
from data.meeting_figures import MEETING_KINDS, MeetingFigures

TEXT = "@"
INTEGER = "0"
ONE_DECIMAL = "0.0"
PERCENT = "0.0%"
THOUSANDS = "#,##0"
SIGNED = "+0.0;-0.0;0.0"
RANK_CHANGE = '"↑"0;"↓"0;"—"'  # places gained, shown as arrows but kept a number

HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", start_color="FBE9E7")
MIN_WIDTH, MAX_WIDTH = 6, 60


@dataclass(frozen=True)
class Column:
    """One column of a sheet: its header, how a row gives its value, the number format."""

    header: str
    value: Callable[[Any], object]
    number_format: str = "General"


MEMBER_COLUMNS = [
    Column("工号", lambda m: m.roster_id, TEXT),
    Column("姓名", lambda m: m.name, TEXT),
    Column("支部", lambda m: m.branch, TEXT),
    Column("学习时长（分钟）", lambda m: m.minutes, INTEGER),
    Column("学习时长（小时）", lambda m: m.minutes / 60, ONE_DECIMAL),
    Column("学习天数", lambda m: m.study_days, INTEGER),
    Column("达标天数", lambda m: m.goal_days, INTEGER),
    Column("最长连续达标天数", lambda m: m.longest_streak, INTEGER),
    Column("志愿服务时长（小时）", lambda m: m.volunteer_minutes / 60, ONE_DECIMAL),
    Column("笔记字数", lambda m: m.note_chars, THOUSANDS),
    Column("周写一文（周）", lambda m: m.article_weeks, INTEGER),
    Column("答题数", lambda m: m.quiz_answered, INTEGER),
    Column("答对数", lambda m: m.quiz_correct, INTEGER),
    Column("微党课阅读（次）", lambda m: m.lessons_read, INTEGER),
    Column("积分", lambda m: m.points, INTEGER),
]

MONTH_LINE_COLUMNS = [
    Column("月份", lambda line: line.month, TEXT),
    Column("学习时长（小时）", lambda line: line.study_hours, ONE_DECIMAL),
    Column("志愿服务时长（小时）", lambda line: line.volunteer_hours, ONE_DECIMAL),
    Column("支部平均得分", lambda line: line.mean_score, ONE_DECIMAL),
]


def write_xlsx(report: Report, path: Path) -> None:
    """Write the report as an .xlsx workbook at `path` (replacing it)."""
    book = Workbook()
    book.remove(book.active)
    book.properties.title = heading(report)
    if isinstance(report, MonthReport):
        _add_sheet(book, "支部评分", _branch_score_columns(report.period), report.branches)
        _add_sheet(book, "党员", MEMBER_COLUMNS, report.members)
        if report.activities is not None:
            _add_activities(book, report.activities)
    elif isinstance(report, QuarterReport):
        _add_sheet(book, "季度通报", _quarter_columns(report.period), report.branches)
        _add_sheet(book, "党员", MEMBER_COLUMNS, report.members)
    else:
        _add_totals(book, report)
        _add_sheet(book, "月度", MONTH_LINE_COLUMNS, report.months)
        _add_sheet(book, "支部排名", _period_branch_columns(report.period), report.branches)
        _add_sheet(book, "优秀党员", _ranked(MEMBER_COLUMNS), report.ranked_top_members)
    book.save(path)


ATTENDANCE_NAMES = {"present": "到", "leave": "请假", "": "缺席"}
SHEET_COLUMNS = [
    Column("工号", lambda row: row.roster_id, TEXT),
    Column("姓名", lambda row: row.name, TEXT),
    Column("支部", lambda row: row.branch, TEXT),
    Column("出勤", lambda row: ATTENDANCE_NAMES.get(row.state, row.state), TEXT),
]
ACTIVITY_COLUMNS = [
    Column("编号", lambda sheet: sheet.activity.id, INTEGER),
    Column("类型", lambda sheet: sheet.kind, TEXT),
    Column("主题", lambda sheet: sheet.activity.title, TEXT),
    Column("时间", lambda sheet: sheet.when, TEXT),
    Column("地点", lambda sheet: sheet.activity.place, TEXT),
    Column("应到", lambda sheet: sheet.expected, INTEGER),
    Column("实到", lambda sheet: sheet.present, INTEGER),
    Column("请假", lambda sheet: sheet.leave, INTEGER),
    Column("缺席", lambda sheet: sheet.absent, INTEGER),
    Column("工作表", lambda sheet: _sheet_title(sheet), TEXT),
]


def _sheet_title(sheet: Sheet) -> str:
    """An activity's sheet: its number and kind (a title may hold characters a sheet's
    name cannot, and run past its 31)."""
    return f"活动{sheet.activity.id} {sheet.kind}"


def _meeting_columns(activities: ActivitiesReport) -> list[Column]:
    """组织生活 by branch: meetings held by kind, attendances expected, present, on leave,
    and the attendance rate (leave apart) as the score counts it."""
    held = [
        Column(
            KINDS[kind],
            lambda row, kind=kind: MeetingFigures.of(activities.meetings, row[0]).held.get(kind, 0),
            INTEGER,
        )
        for kind in MEETING_KINDS
    ]

    def figures(row: tuple[int, str]) -> MeetingFigures:
        return MeetingFigures.of(activities.meetings, row[0])

    return [
        Column("支部", lambda row: row[1], TEXT),
        *held,
        Column("应到（人次）", lambda row: figures(row).expected, INTEGER),
        Column("实到（人次）", lambda row: figures(row).present, INTEGER),
        Column("请假（人次）", lambda row: figures(row).leave, INTEGER),
        Column("出勤率", lambda row: figures(row).attendance, PERCENT),
    ]


def _add_activities(book: Workbook, activities: ActivitiesReport) -> None:
    """The 组织生活 table, the month's activities with their counts, then each activity's
    attendance by name on a sheet of its own."""
    branches = sorted(activities.branches.items(), key=lambda item: item[1])
    _add_sheet(book, "组织生活", _meeting_columns(activities), branches)
    _add_sheet(book, "活动出勤", ACTIVITY_COLUMNS, activities.sheets)
    for sheet in activities.sheets:
        _add_sheet(book, _sheet_title(sheet), SHEET_COLUMNS, sheet.rows)


def _branch_score_columns(period: ReportPeriod) -> list[Column]:
    parts = [
        Column(name, lambda b, part=part: _part(b, part), PERCENT)
        for part, name in PART_NAMES.items()
    ]
    return [
        Column("名次", lambda b: b.rank, INTEGER),
        Column("支部", lambda b: b.branch, TEXT),
        Column("人数", lambda b: b.members, INTEGER),
        Column(score_label(period), lambda b: b.score, ONE_DECIMAL),
        *parts,
    ]


def _part(branch: BranchScore, part: str) -> float | str | None:
    """The part's share; 待评 for the grading a ranked branch has not been given yet; empty
    for a part left out (组织生活 in a period without meetings)."""
    if not branch.parts:
        return None
    return branch.parts.get(part, PENDING if part == GRADING else None)


def _period_branch_columns(period: ReportPeriod) -> list[Column]:
    """Rank, branch, members, each month's score and the mean (quarter and year)."""
    monthly = [
        Column(f"{month.number}月", lambda b, i=index: b.monthly[i], ONE_DECIMAL)
        for index, month in enumerate(period.months())
    ]
    return [
        Column("名次", lambda b: b.rank, INTEGER),
        Column("支部", lambda b: b.branch, TEXT),
        Column("人数", lambda b: b.members, INTEGER),
        *monthly,
        Column(score_label(period), lambda b: b.score, ONE_DECIMAL),
    ]


def _quarter_columns(period: ReportPeriod) -> list[Column]:
    movement: list[Column] = [
        Column("上季度名次", lambda b: b.previous_rank, INTEGER),
        Column("名次变化", lambda b: b.rank_change, RANK_CHANGE),
        Column("上季度得分", lambda b: b.previous_score, ONE_DECIMAL),
        Column("得分变化", lambda b: b.score_change, SIGNED),
    ]
    return [*_period_branch_columns(period), *movement]


def _ranked(columns: list[Column]) -> list[Column]:
    """The columns for (rank, row) pairs, with the rank first."""
    return [
        Column("名次", lambda pair: pair[0], INTEGER),
        *(Column(c.header, lambda pair, c=c: c.value(pair[1]), c.number_format) for c in columns),
    ]


def _add_totals(book: Workbook, report: YearReport) -> None:
    """The year's totals: one row per figure, each with its own number format."""
    rows = [
        ("参与党员（人）", report.members, INTEGER),
        ("学习时长（小时）", report.study_hours, ONE_DECIMAL),
        ("志愿服务时长（小时）", report.volunteer_hours, ONE_DECIMAL),
        ("学习笔记（字）", report.note_chars, THOUSANDS),
        ("微党课阅读（次）", report.lessons_read, INTEGER),
    ]
    columns = [Column("项目", lambda row: row[0], TEXT), Column("数值", lambda row: row[1])]
    sheet = _add_sheet(book, "年度汇总", columns, rows)
    for index, (_, _, number_format) in enumerate(rows, start=2):
        sheet.cell(index, 2).number_format = number_format


def _add_sheet(
    book: Workbook, title: str, columns: Sequence[Column], rows: Sequence[Any]
) -> Worksheet:
    """A sheet with a bold frozen header, typed cells, fitted widths and an autofilter."""
    sheet = book.create_sheet(title)
    for index, column in enumerate(columns, start=1):
        cell = write_cell(sheet, 1, index, column.header)
        cell.font, cell.fill = HEADER_FONT, HEADER_FILL
    for row_index, row in enumerate(rows, start=2):
        for index, column in enumerate(columns, start=1):
            cell = write_cell(sheet, row_index, index, column.value(row))
            cell.number_format = column.number_format
    sheet.freeze_panes = "A2"
    last = get_column_letter(len(columns))
    sheet.auto_filter.ref = f"A1:{last}{len(rows) + 1}"
    _fit_widths(sheet, columns, rows)
    return sheet


def _fit_widths(sheet: Worksheet, columns: Sequence[Column], rows: Sequence[Any]) -> None:
    for index, column in enumerate(columns, start=1):
        texts = [column.header, *(_shown(column.value(row), column.number_format) for row in rows)]
        # +2 for the autofilter's drop-down button beside the header.
        width = max(display_width(text) for text in texts) + 2
        sheet.column_dimensions[get_column_letter(index)].width = min(
            MAX_WIDTH, max(MIN_WIDTH, width)
        )


def _shown(value: object, number_format: str) -> str:
    """About how Excel shows the value, for sizing its column."""
    if value is None:
        return ""
    if isinstance(value, float | int) and not isinstance(value, bool):
        if number_format == PERCENT:
            return f"{100 * value:.1f}%"
        if number_format == SIGNED:
            return f"{value:+.1f}"
        if number_format == ONE_DECIMAL:
            return f"{value:.1f}"
        if number_format == THOUSANDS:
            return f"{value:,.0f}"
    return str(value)


def display_width(text: str) -> int:
    """Columns the text takes in a spreadsheet: CJK (wide, full-width) characters count 2."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)
