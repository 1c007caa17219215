"""Report periods as people write them: "2026-10", "2026Q3", "2026"."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum

from data.figures import Period


class PeriodKind(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


@dataclass(frozen=True)
class ReportPeriod:
    kind: PeriodKind
    year: int
    number: int  # month 1-12, quarter 1-4, or 1 for a year

    @property
    def label(self) -> str:
        if self.kind is PeriodKind.MONTH:
            return f"{self.year}-{self.number:02d}"
        if self.kind is PeriodKind.QUARTER:
            return f"{self.year}Q{self.number}"
        return str(self.year)

    @property
    def span(self) -> Period:
        if self.kind is PeriodKind.MONTH:
            last = calendar.monthrange(self.year, self.number)[1]
            return Period(dt.date(self.year, self.number, 1), dt.date(self.year, self.number, last))
        if self.kind is PeriodKind.QUARTER:
            first_month = 3 * (self.number - 1) + 1
            last_month = first_month + 2
            last = calendar.monthrange(self.year, last_month)[1]
            return Period(dt.date(self.year, first_month, 1), dt.date(self.year, last_month, last))
        return Period(dt.date(self.year, 1, 1), dt.date(self.year, 12, 31))

    def months(self) -> list[ReportPeriod]:
        first = self.span.first.month
        count = {PeriodKind.MONTH: 1, PeriodKind.QUARTER: 3, PeriodKind.YEAR: 12}[self.kind]
        return [ReportPeriod(PeriodKind.MONTH, self.year, first + i) for i in range(count)]

    def previous(self) -> ReportPeriod:
        if self.kind is PeriodKind.YEAR:
            return ReportPeriod(self.kind, self.year - 1, 1)
        size = 12 if self.kind is PeriodKind.MONTH else 4
        if self.number == 1:
            return ReportPeriod(self.kind, self.year - 1, size)
        return ReportPeriod(self.kind, self.year, self.number - 1)


def parse_period(text: str) -> ReportPeriod:
    """ "2026-10" (a month), "2026Q3" (a quarter), "2026" (a year); ValueError otherwise."""
    text = text.strip().upper()
    if match := re.fullmatch(r"(\d{4})-(\d{1,2})", text):
        year, month = int(match[1]), int(match[2])
        if 1 <= month <= 12:
            return ReportPeriod(PeriodKind.MONTH, year, month)
    elif match := re.fullmatch(r"(\d{4})Q([1-4])", text):
        return ReportPeriod(PeriodKind.QUARTER, int(match[1]), int(match[2]))
    elif re.fullmatch(r"\d{4}", text):
        return ReportPeriod(PeriodKind.YEAR, int(text), 1)
    raise ValueError(f"not a period: {text!r} (write 2026-10, 2026Q3 or 2026)")


def just_ended(kind: PeriodKind, today: dt.date) -> ReportPeriod:
    """The month, quarter or year that ended before `today` (for the scheduled reports)."""
    yesterday = today - dt.timedelta(days=1)
    if kind is PeriodKind.MONTH:
        return ReportPeriod(kind, yesterday.year, yesterday.month)
    if kind is PeriodKind.QUARTER:
        return ReportPeriod(kind, yesterday.year, (yesterday.month - 1) // 3 + 1)
    return ReportPeriod(kind, yesterday.year, 1)
