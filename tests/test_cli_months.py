"""`qiyi month close|reopen` through typer's CliRunner on SQLite, the commands' clock fixed at
2026-11-25 (October has ended, November has not); audited with the CLI actor."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner, Result

import bot.cli_months
from bot.cli import app
from bot.clock import FixedClock
from tests.conftest import MORNING


@pytest.fixture(autouse=True)
def isolated(isolated_cli: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def fixed_clock(zone: ZoneInfo) -> FixedClock:
        return FixedClock(MORNING, zone)

    monkeypatch.setattr(bot.cli_months, "SystemClock", fixed_clock)
    yield


@pytest.fixture
def env(sqlite_url: str) -> dict[str, str]:
    environment = {"QIYI_DATABASE_URL": sqlite_url, "QIYI_SCHEDULER": "off"}
    assert invoke(environment, "db", "upgrade").exit_code == 0
    return environment


def invoke(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def audit_rows(tmp_path: Path) -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(tmp_path / "qiyi.db") as db:
        return db.execute(
            "SELECT action, door, object_id, after FROM auditentry ORDER BY id"
        ).fetchall()


def closed(tmp_path: Path) -> list[str]:
    with sqlite3.connect(tmp_path / "qiyi.db") as db:
        return [row[0] for row in db.execute("SELECT month FROM closedmonth")]


def test_close_and_reopen_a_month(env: dict[str, str], tmp_path: Path) -> None:
    result = invoke(env, "month", "close", "2026-10")
    assert result.exit_code == 0, result.output
    assert "2026-10 closed" in result.output
    assert closed(tmp_path) == ["2026-10-01"]

    again = invoke(env, "month", "close", "2026-10")
    assert again.exit_code == 1 and "closed already" in again.output

    no_reason = invoke(env, "month", "reopen", "2026-10")
    assert no_reason.exit_code == 2  # --reason is required
    blank = invoke(env, "month", "reopen", "2026-10", "--reason", "  ")
    assert blank.exit_code == 1 and "reason" in blank.output
    assert closed(tmp_path) == ["2026-10-01"]

    reopened = invoke(env, "month", "reopen", "2026-10", "--reason", "补录资料")
    assert reopened.exit_code == 0, reopened.output
    assert closed(tmp_path) == []
    rows = audit_rows(tmp_path)
    assert [(action, door, month) for action, door, month, _ in rows] == [
        ("month.close", "cli", "2026-10"),
        ("month.reopen", "cli", "2026-10"),
    ]
    assert "补录资料" in rows[1][3]


def test_a_month_in_progress_or_not_a_month_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    current = invoke(env, "month", "close", "2026-11")
    assert current.exit_code == 1 and "has not ended" in current.output
    for text in ("2026Q4", "2026-13", "十月"):
        result = invoke(env, "month", "close", text)
        assert result.exit_code == 1 and "not a month" in result.output
    assert closed(tmp_path) == [] and audit_rows(tmp_path) == []
