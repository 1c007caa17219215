"""`qiyi outbox list` names the members as people know them: 工号 and name."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner, Result

import bot.cli_pushes
from bot.cli import app
from bot.clock import FixedClock
from tests.conftest import MORNING, _reset_postgres

ROSTER = [
    "member_id,name,branch,role",
    "1001,张三,第一党支部,member",
    "A-0042,[bold]欧阳娜娜[/bold],第二党支部,member",  # brackets are text, not markup
]


@pytest.fixture(autouse=True)
def isolated(isolated_cli: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:

    def fixed_clock(zone: ZoneInfo) -> FixedClock:
        return FixedClock(MORNING, zone)

    monkeypatch.setattr(bot.cli_pushes, "SystemClock", fixed_clock)
    yield


def invoke(env: dict[str, str], *args: str, input: str | None = None) -> Result:
    result = CliRunner().invoke(app, list(args), env=env, input=input)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    """Two bound members, each with a reminder in the outbox."""
    if database_url.startswith("postgresql"):
        asyncio.run(_reset_postgres(database_url))
    values = {"QIYI_DATABASE_URL": database_url, "QIYI_SCHEDULER": "off"}
    Path("roster.csv").write_text("\n".join(ROSTER) + "\n", encoding="utf-8")
    invoke(values, "members", "import", "roster.csv")
    for member in ("1001", "A-0042"):
        invoke(values, "chat", "--as", member, input="")
    invoke({**values, "QIYI_REMINDER_TIME": "00:00"}, "push", "reminder")
    return values


def test_the_table_shows_member_ids_and_names(env: dict[str, str]) -> None:
    result = invoke({**env, "COLUMNS": "160"}, "outbox", "list")

    rows = [line for line in result.output.splitlines() if "reminder" in line]
    assert len(rows) == 2
    assert "A-0042" in rows[0] and "[bold]欧阳娜娜[/bold]" in rows[0]
    assert "1001" in rows[1] and "张三" in rows[1]
    assert "member_id" in result.output and "name" in result.output


def test_json_has_member_ids_and_names(env: dict[str, str]) -> None:
    items = json.loads(invoke(env, "outbox", "list", "--json").stdout)["items"]

    assert [(item["member_id"], item["name"]) for item in items] == [
        ("A-0042", "[bold]欧阳娜娜[/bold]"),
        ("1001", "张三"),
    ]
    assert all(isinstance(item["member"], int) for item in items)  # the internal id stays
