"""Ties share a rank in the reports (standard competition ranking, 1, 1, 3): the month's
branch scores, the quarter's and the year's means, the year's top members, and every output
(Markdown, HTML, the workbook, the chart)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from matplotlib.colors import to_hex
from openpyxl import load_workbook

from bot.reports import chart
from bot.reports.bulletins import MonthReport, YearReport, _period_branches
from bot.reports.documents import render_html, render_markdown
from bot.reports.periods import PeriodKind, ReportPeriod
from bot.reports.scoring import score_branches, shared_ranks
from bot.reports.spreadsheet import write_xlsx
from bot.rules import load_rules
from data.figures import MemberFigures, Period

OCTOBER = Period(dt.date(2026, 10, 1), dt.date(2026, 10, 31))
MONTH = ReportPeriod(PeriodKind.MONTH, 2026, 10)
YEAR = ReportPeriod(PeriodKind.YEAR, 2026, 1)
NAMES = {1: "甲支部", 2: "乙支部", 3: "丙支部", 4: "丁支部"}


def person(member_id: int, branch_id: int, minutes: int, points: int = 0) -> MemberFigures:
    days = minutes // 120
    return MemberFigures(
        member_id,
        f"{member_id:04d}",
        f"党员{member_id}",
        branch_id,
        NAMES[branch_id],
        31,
        minutes=minutes,
        study_days=days,
        goal_days=days,
        points=points,
    )


def tied_month() -> MonthReport:
    """甲 and 乙 alike (20 days at goal each), 丙 less, 丁 least."""
    found = {
        1: person(1, 1, 20 * 120),
        2: person(2, 2, 20 * 120),
        3: person(3, 3, 10 * 120),
        4: person(4, 4, 2 * 120),
    }
    rules = load_rules().scoring
    branches = score_branches(found, NAMES, {}, OCTOBER, 120, rules)
    return MonthReport(MONTH, branches, list(found.values()), rules.weights())


def test_shared_ranks() -> None:
    assert shared_ranks([]) == []
    assert shared_ranks([9.5, 9.5, 7.0, 7.0, 7.0, 1.0]) == [1, 1, 3, 3, 3, 6]
    assert shared_ranks([3, 2, 1]) == [1, 2, 3]


def test_equal_month_scores_share_a_rank() -> None:
    report = tied_month()
    ranked = [(b.branch, b.rank) for b in report.branches]
    assert ranked == [("乙支部", 1), ("甲支部", 1), ("丙支部", 3), ("丁支部", 4)]
    assert report.branches[0].score == report.branches[1].score


def test_equal_means_share_a_rank_over_a_quarter() -> None:
    months = [tied_month(), tied_month(), tied_month()]
    ranked = [(row.branch, row.rank) for row in _period_branches(months)]
    assert ranked == [("乙支部", 1), ("甲支部", 1), ("丙支部", 3), ("丁支部", 4)]


def test_month_documents_show_the_shared_rank() -> None:
    report = tied_month()
    markdown = render_markdown(report)
    assert "| 1 | 乙支部 |" in markdown and "| 1 | 甲支部 |" in markdown
    assert "| 3 | 丙支部 |" in markdown
    page = render_html(report)
    assert page.count('<td class="num">1</td><td class="name">') == 2
    assert '<td class="num">3</td><td class="name">丙支部' in page


def tied_year() -> YearReport:
    top = [person(1, 1, 600, 50), person(2, 2, 300, 50), person(3, 3, 900, 40)]
    return YearReport(YEAR, 3, 30.0, 0.0, 0, 0, top, _period_branches([tied_month()] * 12))


def test_the_year_s_top_members_share_a_rank(tmp_path: Path) -> None:
    report = tied_year()
    assert [(rank, m.name) for rank, m in report.ranked_top_members] == [
        (1, "党员1"),
        (1, "党员2"),
        (3, "党员3"),
    ]
    markdown = render_markdown(report)
    assert "| 1 | 党员1 |" in markdown and "| 1 | 党员2 |" in markdown
    assert "| 3 | 党员3 |" in markdown
    page = render_html(report)
    assert '<td class="num">3</td><td class="name">党员3</td>' in page

    write_xlsx(report, tmp_path / "year.xlsx")
    book = load_workbook(tmp_path / "year.xlsx")
    top = book["优秀党员"]
    assert [top.cell(row, 1).value for row in range(2, 5)] == [1, 1, 3]
    branches = book["支部排名"]
    assert [branches.cell(row, 1).value for row in range(2, 6)] == [1, 1, 3, 4]


def test_the_chart_labels_and_highlights_the_shared_places() -> None:
    report = tied_month()
    rows = chart.ranked_scores(report)
    assert [(rank, name) for rank, name, _ in rows] == [
        (1, "乙支部"),
        (1, "甲支部"),
        (3, "丙支部"),
        (4, "丁支部"),
    ]
    figure = chart._draw("月评分", "得分", rows, chart.WIDTH_PX)
    axes = figure.axes[0]
    labels = [label.get_text() for label in axes.get_yticklabels()]
    assert labels == ["1. 乙支部", "1. 甲支部", "3. 丙支部", "4. 丁支部"]
    colors = [to_hex(bar.get_facecolor()) for bar in axes.patches]
    assert colors == [chart.TOP_COLOR.lower()] * 3 + [chart.BAR_COLOR.lower()]


def test_a_tie_for_third_is_highlighted_whole() -> None:
    found = {
        1: person(1, 1, 25 * 120),
        2: person(2, 2, 20 * 120),
        3: person(3, 3, 10 * 120),
        4: person(4, 4, 10 * 120),
    }
    rules = load_rules().scoring
    branches = score_branches(found, NAMES, {}, OCTOBER, 120, rules)
    report = MonthReport(MONTH, branches, list(found.values()), rules.weights())
    assert [b.rank for b in report.branches] == [1, 2, 3, 3]
    figure = chart._draw("月评分", "得分", chart.ranked_scores(report), chart.WIDTH_PX)
    colors = [to_hex(bar.get_facecolor()) for bar in figure.axes[0].patches]
    assert colors == [chart.TOP_COLOR.lower()] * 4
