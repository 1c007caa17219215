"""`qiyi report … --out`: a path with an extension is the file to write, one without is a
folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner, Result

from bot.cli import app

ROSTER = "member_id,name,branch,role\n1001,张三,第一党支部,member\n"


pytestmark = pytest.mark.usefixtures("isolated_cli")


@pytest.fixture
def env(sqlite_url: str) -> dict[str, str]:
    """A database with a one-member roster."""
    values = {"QIYI_DATABASE_URL": sqlite_url, "QIYI_SCHEDULER": "off"}
    Path("roster.csv").write_text(ROSTER, encoding="utf-8")
    ok(CliRunner().invoke(app, ["members", "import", "roster.csv"], env=values))
    return values


def report(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, ["report", *args], env=env)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def written(root: Path) -> list[str]:
    """Every file under root, relative, but the database and the roster."""
    return sorted(
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and not path.name.startswith(("qiyi.db", "roster.csv"))
    )


def test_a_path_with_an_extension_is_the_file_written(env: dict[str, str], tmp_path: Path) -> None:
    result = ok(report(env, "month", "2026-10", "--out", "m.xlsx"))

    assert result.output.splitlines() == ["2026年10月 支部评分", "m.xlsx"]  # heading, then file
    assert written(tmp_path) == ["m.xlsx"]
    assert (tmp_path / "m.xlsx").is_file()
    sheets = load_workbook(tmp_path / "m.xlsx").sheetnames
    assert sheets == ["支部评分", "党员", "组织生活", "活动出勤"]


def test_the_file_s_folders_are_made(env: dict[str, str], tmp_path: Path) -> None:
    ok(report(env, "quarter", "2026Q3", "--out", "a/b/bulletin.MD"))

    assert written(tmp_path) == ["a/b/bulletin.MD"]
    text = (tmp_path / "a" / "b" / "bulletin.MD").read_text(encoding="utf-8")
    assert text.startswith("# 2026年第3季度")


def test_the_format_may_be_named_too_when_it_agrees(env: dict[str, str], tmp_path: Path) -> None:
    ok(report(env, "year", "2026", "--format", "png", "--out", "chart.png"))

    assert written(tmp_path) == ["chart.png"]
    assert (tmp_path / "chart.png").read_bytes().startswith(b"\x89PNG")


def test_a_path_without_an_extension_is_a_folder(env: dict[str, str], tmp_path: Path) -> None:
    ok(report(env, "month", "2026-10", "--out", "out"))

    assert written(tmp_path) == ["out/2026-10.md", "out/2026-10.png", "out/2026-10.xlsx"]


def test_an_existing_folder_with_a_dot_stays_a_folder(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "reports.2026").mkdir()

    ok(report(env, "month", "2026-10", "--format", "md", "--out", "reports.2026"))

    assert written(tmp_path) == ["reports.2026/2026-10.md"]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        pytest.param(["--format", "md,xlsx", "--out", "m.xlsx"], "give a folder", id="two-formats"),
        pytest.param(["--format", "md", "--out", "m.xlsx"], "md", id="other-format"),
        pytest.param(["--out", "m.pdf"], "'pdf' is not a format", id="unknown-extension"),
    ],
)
def test_a_file_that_does_not_fit_the_formats_is_refused(
    env: dict[str, str], tmp_path: Path, args: list[str], named: str
) -> None:
    result = report(env, "month", "2026-10", *args)

    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert named in result.output
    assert written(tmp_path) == []
