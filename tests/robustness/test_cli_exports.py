"""Every spreadsheet the command line exports keeps text from outside as text: a roster name
or branch that starts like a formula never becomes one (through `bot.sheets.write_cell`)."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner, Result

import bot.cli
from bot.clock import FixedClock
from tests.conftest import MORNING

HOSTILE_NAMES = {"1001": "=1+1", "1002": "@SUM(A1:A9)", "1003": '=HYPERLINK("http://x","点我")'}
HOSTILE_BRANCH = "-2+3支部"
EXPORTS = [
    pytest.param(["month", "2026-11"], id="month"),
    pytest.param(["quarter", "2026Q4"], id="quarter"),
    pytest.param(["year", "2026"], id="year"),
]


@pytest.fixture(autouse=True)
def isolated(isolated_cli: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:

    def fixed_clock(zone: ZoneInfo) -> FixedClock:
        return FixedClock(MORNING, zone)

    monkeypatch.setattr(bot.cli, "SystemClock", fixed_clock)  # the check-ins' day
    yield


def invoke(env: dict[str, str], *args: str, input: str | None = None) -> Result:
    result = CliRunner().invoke(bot.cli.app, list(args), env=env, input=input)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


@pytest.fixture
def env(sqlite_url: str) -> dict[str, str]:
    """Members with formula-like names in a formula-like branch, each with a check-in."""
    values = {"QIYI_DATABASE_URL": sqlite_url, "QIYI_SCHEDULER": "off"}
    lines = ["member_id,name,branch,role"]
    lines += [
        f'{member},"{name.replace(chr(34), chr(34) * 2)}",{HOSTILE_BRANCH},member'
        for member, name in HOSTILE_NAMES.items()
    ]
    Path("roster.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    invoke(values, "members", "import", "roster.csv")
    for member in HOSTILE_NAMES:
        invoke(values, "chat", "--as", member, input="学习 60\n")
    return values


@pytest.mark.parametrize("period", EXPORTS)
def test_report_workbooks_hold_no_formula(env: dict[str, str], period: list[str]) -> None:
    invoke(env, "report", *period, "--format", "xlsx", "--out", "out.xlsx")

    with zipfile.ZipFile("out.xlsx") as archive:
        sheets = [name for name in archive.namelist() if name.startswith("xl/worksheets/")]
        assert sheets
        for name in sheets:
            assert "<f>" not in archive.read(name).decode()
    book = load_workbook("out.xlsx")
    texts = {
        cell.value: cell
        for sheet in book.worksheets
        for row in sheet.iter_rows()
        for cell in row
        if isinstance(cell.value, str)
    }
    hostile = [*HOSTILE_NAMES.values(), HOSTILE_BRANCH]
    shown = [text for text in hostile if text in texts]
    assert shown == hostile  # the report shows every one of them
    for text in shown:
        assert texts[text].data_type == "s"
        assert texts[text].quotePrefix
    headers = [cell for sheet in book.worksheets for cell in sheet[1]]
    assert all(cell.data_type == "s" for cell in headers if cell.value is not None)
