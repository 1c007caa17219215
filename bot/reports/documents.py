"""The reports as Markdown and HTML, rendered from `content/templates/reports/`."""

from __future__ import annotations

from typing import Any

from bot.reports.activity_sheets import KINDS
from bot.reports.bulletins import MonthReport, QuarterReport, YearReport
from bot.reports.periods import PeriodKind, ReportPeriod
from bot.reports.scoring import GRADING
from content.texts import render
from data.meeting_figures import MEETING_KINDS

Report = MonthReport | QuarterReport | YearReport

# The one place the score's parts get their Chinese names; templates, the spreadsheet and
# the chart all read it. Keys and order are `scoring.PARTS`.
PART_NAMES: dict[str, str] = {
    "participation": "学习参与率",
    "study": "日均学习时长",
    "goal_days": "达标天数",
    "volunteer": "志愿服务时长",
    "notes": "学习笔记字数",
    "articles": "周写一文",
    "quiz": "答题正确率",
    "materials": "资料报送",
    "grading": "月打分",
    "organisation": "组织生活",
}

PENDING = "待评"  # a part not given yet: the grading before the office grades

_TEMPLATES = {
    PeriodKind.MONTH: "month",
    PeriodKind.QUARTER: "quarter",
    PeriodKind.YEAR: "year",
}


def heading(report: Report) -> str:
    """The report's title: "2026年10月 支部评分", "2026年第3季度 支部通报", "2026年 年终总结";
    a period in progress says 截至今日 with the day, a closed month 已关账."""
    return render(
        "reports/heading",
        period=report.period,
        through=report.through,
        closed=getattr(report, "closed_at", None) is not None,
    )


def ungraded(report: Report) -> bool:
    """Whether a ranked branch of a month's report still waits for its grade (待评)."""
    return isinstance(report, MonthReport) and any(
        GRADING not in branch.parts for branch in report.branches if branch.parts
    )


def pending_note(report: Report) -> str:
    """The line saying how an ungraded branch's score is made; empty when none is."""
    return render("reports/pending_note") if ungraded(report) else ""


def score_label(period: ReportPeriod) -> str:
    """What a branch's score is called in this period's report (得分, 月均得分)."""
    return render("reports/score_label", period=period)


def render_markdown(report: Report) -> str:
    """The report as a Markdown document."""
    return _render(report, "md")


def render_html(report: Report) -> str:
    """The report as a standalone HTML page (inline CSS, readable on a phone)."""
    return _render(report, "html")


def _render(report: Report, suffix: str) -> str:
    name = _TEMPLATES[report.period.kind]
    return render(f"reports/{name}.{suffix}", **_context(report))


def _context(report: Report) -> dict[str, Any]:
    return {
        "report": report,
        "heading": heading(report),
        "pending_note": pending_note(report),
        "pending": PENDING,
        "score_label": score_label(report.period),
        "parts": PART_NAMES,
        "months": report.period.months(),
        "unranked": any(branch.rank is None for branch in report.branches),
        "kinds": KINDS,
        "meeting_kinds": MEETING_KINDS,
    }
