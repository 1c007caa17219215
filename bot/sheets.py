"""Cells of exported spreadsheets: text from outside never becomes a live formula.

A roster name such as `=1+1` or `=HYPERLINK(…)` written as is into an XLSX or CSV file runs
as a formula when the party office opens it (CSV injection). Text starting with one of the
characters a spreadsheet reads as a formula is written as text: in XLSX as a string cell
with Excel's quote prefix (shown as typed, not evaluated, and kept text when edited), in
CSV behind an apostrophe, as OWASP recommends.
"""

from __future__ import annotations

from collections.abc import Sequence

from openpyxl.cell.cell import Cell
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def looks_like_formula(value: object) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_STARTS)


def write_cell(sheet: Worksheet, row: int, column: int, value: object) -> Cell:
    """`sheet.cell(row, column, value)`, with formula-like text kept as text."""
    cell = sheet.cell(row, column, value)
    if looks_like_formula(value):
        cell.data_type = "s"
        cell.quotePrefix = True
    return cell


def write_heading(
    sheet: Worksheet, titles: Sequence[str], widths: Sequence[int], title: str
) -> None:
    """Name the sheet, write the column titles in row 1 with their widths, and keep that row
    in view while scrolling."""
    sheet.title = title
    for column, (heading, width) in enumerate(zip(titles, widths, strict=True), start=1):
        write_cell(sheet, 1, column, heading)
        sheet.column_dimensions[get_column_letter(column)].width = width
    sheet.freeze_panes = "A2"


def csv_cell(value: object) -> object:
    """A value for `csv.writer`, with formula-like text behind an apostrophe."""
    return "'" + value if looks_like_formula(value) and isinstance(value, str) else value
