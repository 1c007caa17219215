"""Exported spreadsheets never turn text from outside (a roster name) into a live formula."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from bot.reports.bulletins import MonthReport
from bot.reports.periods import parse_period
from bot.reports.scoring import PARTS, BranchScore
from bot.reports.spreadsheet import write_xlsx
from bot.rules import ScoringRules
from bot.sheets import csv_cell, write_cell
from data.figures import MemberFigures

HOSTILE = ["=1+1", "+1", "-2+3", "@SUM(A1)", '=HYPERLINK("http://x","点我")', "\t=1"]


@pytest.mark.parametrize("text", HOSTILE)
def test_formula_like_text_is_written_as_text(tmp_path: Path, text: str) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    write_cell(sheet, 1, 1, text)
    write_cell(sheet, 1, 2, 42)
    write_cell(sheet, 1, 3, "张三")
    path = tmp_path / "out.xlsx"
    book.save(path)

    sheet_xml = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet_xml  # no formula anywhere in the file
    read = load_workbook(path).active
    assert read is not None
    assert read["A1"].value == text and read["A1"].data_type == "s"
    assert read["A1"].quotePrefix
    assert read["B1"].value == 42 and not read["B1"].quotePrefix
    assert not read["C1"].quotePrefix


@pytest.mark.parametrize("text", HOSTILE)
def test_formula_like_text_is_quoted_in_csv(text: str) -> None:
    buffer = io.StringIO()
    csv.writer(buffer).writerow([csv_cell(text), csv_cell("张三"), csv_cell(5)])
    row = next(csv.reader(io.StringIO(buffer.getvalue())))
    assert row == ["'" + text, "张三", "5"]


def test_a_hostile_roster_name_stays_text_in_the_month_workbook(tmp_path: Path) -> None:
    name = "=1+1"
    person = MemberFigures(1, "1001", name, 1, "-支部", 31, minutes=60, points=3)
    branch = BranchScore(1, "-支部", 1, {part: 0.5 for part in PARTS}, 50.0, 1)
    report = MonthReport(parse_period("2026-10"), [branch], [person], ScoringRules().weights())
    path = tmp_path / "2026-10.xlsx"

    write_xlsx(report, path)

    with zipfile.ZipFile(path) as archive:
        sheets = [n for n in archive.namelist() if n.startswith("xl/worksheets/sheet")]
        assert all("<f>" not in archive.read(n).decode() for n in sheets)
    people = load_workbook(path)["党员"]
    assert people["B2"].value == name and people["B2"].data_type == "s"
