"""`qiyi push`, `qiyi jobs list` and `qiyi outbox list|retry`, driven through typer's CliRunner
on SQLite, with the commands' clock fixed (no wall clock in time-based logic)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner, Result

import bot.cli_pushes
from bot.cli import app
from bot.clock import FixedClock
from tests.conftest import MORNING

HEADER = "member_id,name,branch,role"
ROSTER = [
    "1001,张三,第一党支部,member",
    "1002,李四,第一党支部,member",
    "2001,赵强,第二党支部,secretary",
]
OUTCOMES = ["sent", "fallback", "mailbox", "failed", "skipped", "retry"]
NEWEST_LESSON = "弘扬志愿服务精神"  # the newest lesson published by MORNING


@pytest.fixture(autouse=True)
def isolated(isolated_cli: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A tmp working directory (no stray .env), no QIYI_ settings from the outer shell, and
    the push commands' clock fixed at Wednesday 2026-11-25 09:00 in Asia/Shanghai."""

    def fixed_clock(zone: ZoneInfo) -> FixedClock:
        return FixedClock(MORNING, zone)

    monkeypatch.setattr(bot.cli_pushes, "SystemClock", fixed_clock)
    yield


@pytest.fixture
def env(sqlite_url: str) -> dict[str, str]:
    return {"QIYI_DATABASE_URL": sqlite_url, "QIYI_SCHEDULER": "off"}


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    """The SQLite file behind the `sqlite_url` fixture."""
    return tmp_path / "qiyi.db"


JOBS = ("lesson", "news", "reminders", "month_report", "quarter_report", "year_report")


def invoke(env: dict[str, str], *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env, input=input)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def flat(text: str) -> str:
    return " ".join(text.split())


def query(db_file: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db_file) as connection:
        return list(connection.execute(sql, params))


def execute(db_file: Path, sql: str, *params: Any) -> None:
    with sqlite3.connect(db_file) as connection:
        connection.execute(sql, params)


def outcomes(output: str) -> dict[str, int]:
    """The summary table (header row of outcomes, then one row of counts) as a dict."""
    lines = output.splitlines()
    for index, line in enumerate(lines):
        cells = line.replace("┃", " ").replace("│", " ").split()
        if cells == OUTCOMES:
            for row in lines[index + 1 :]:
                values = row.replace("│", " ").split()
                if values and all(value.isdigit() for value in values):
                    assert len(values) == len(OUTCOMES), row
                    return dict(zip(OUTCOMES, map(int, values), strict=True))
    raise AssertionError(f"no summary table in:\n{output}")


@pytest.fixture
def roster(env: dict[str, str], tmp_path: Path) -> None:
    """Three members, each bound to a console account (no WeChat), and the shipped content."""
    path = tmp_path / "roster.csv"
    path.write_text("\n".join([HEADER, *ROSTER]) + "\n", encoding="utf-8")
    ok(invoke(env, "members", "import", str(path)))
    ok(invoke(env, "content", "sync"))
    for line in ROSTER:
        ok(invoke(env, "chat", "--as", line.split(",")[0], input=""))


def outbox_rows(db_file: Path) -> list[tuple[Any, ...]]:
    return query(db_file, "SELECT id, kind, state, attempts FROM outboxitem ORDER BY id")


# --- push --------------------------------------------------------------------------------


def test_push_dry_run_counts_and_writes_nothing(
    env: dict[str, str], roster: None, db_file: Path
) -> None:
    result = ok(invoke({**env, "QIYI_REMINDER_TIME": "00:00"}, "push", "reminder", "--dry-run"))

    assert "reminder: would enqueue 3" in flat(result.output)
    assert query(db_file, "SELECT COUNT(*) FROM outboxitem") == [(0,)]
    assert query(db_file, "SELECT COUNT(*) FROM mailboxitem") == [(0,)]


def test_push_lesson_dry_run_leaves_the_lesson_unpushed(
    env: dict[str, str], roster: None, db_file: Path
) -> None:
    result = ok(invoke(env, "push", "lesson", "--dry-run"))

    assert f"lesson ({NEWEST_LESSON}): would enqueue 3" in flat(result.output)
    assert query(db_file, "SELECT COUNT(*) FROM outboxitem") == [(0,)]
    assert query(db_file, "SELECT COUNT(*) FROM article WHERE pushed_at IS NOT NULL") == [(0,)]
    # So the real push still finds it.
    assert f"lesson ({NEWEST_LESSON}): enqueued 3" in flat(ok(invoke(env, "push", "lesson")).output)


def test_push_reminder_enqueues_and_summarises(
    env: dict[str, str], roster: None, db_file: Path
) -> None:
    result = ok(invoke({**env, "QIYI_REMINDER_TIME": "00:00"}, "push", "reminder"))

    assert "reminder: enqueued 3" in flat(result.output)
    # No WeChat AppID: nothing goes through the API, every push waits in a mailbox.
    assert outcomes(result.output) == {
        "sent": 0,
        "fallback": 0,
        "mailbox": 3,
        "failed": 0,
        "skipped": 0,
        "retry": 0,
    }
    assert [row[1:] for row in outbox_rows(db_file)] == [("reminder", "mailbox", 0)] * 3
    texts = [row[0] for row in query(db_file, "SELECT text FROM mailboxitem ORDER BY id")]
    assert texts == ["学习提醒：今天 0/120 分钟，回复“学习 分钟数”打卡"] * 3

    again = ok(invoke({**env, "QIYI_REMINDER_TIME": "00:00"}, "push", "reminder"))

    assert "reminder: enqueued 0" in flat(again.output)
    assert outcomes(again.output)["mailbox"] == 0
    assert len(outbox_rows(db_file)) == 3


def test_push_reminder_before_the_reminder_time_enqueues_nothing(
    env: dict[str, str], roster: None, db_file: Path
) -> None:
    result = ok(invoke(env, "push", "reminder"))  # 09:00, the default time is 20:30

    assert "reminder: enqueued 0" in flat(result.output)
    assert outbox_rows(db_file) == []


def test_push_lesson_names_the_lesson(env: dict[str, str], roster: None, db_file: Path) -> None:
    result = ok(invoke(env, "push", "lesson"))

    assert f"lesson ({NEWEST_LESSON}): enqueued 3" in flat(result.output)
    assert outcomes(result.output)["mailbox"] == 3
    pushed = query(db_file, "SELECT title FROM article WHERE pushed_at IS NOT NULL ORDER BY id")
    assert (NEWEST_LESSON,) in pushed
    assert ("廉洁自律与中央八项规定精神",) not in pushed  # published 11-30

    again = ok(invoke(env, "push", "lesson"))

    assert "lesson: enqueued 0" in flat(again.output)


def test_push_news_names_the_news(env: dict[str, str], roster: None) -> None:
    result = ok(invoke(env, "push", "news"))

    assert "news (厂安全技能竞赛圆满落幕): enqueued 3" in flat(result.output)


# --- jobs list ---------------------------------------------------------------------------


def job_rows(output: str) -> dict[str, str]:
    """Job id -> its table row, flattened."""
    rows: dict[str, str] = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) > 2 and cells[1] in JOBS:
            rows[cells[1]] = flat(line)
    return rows


def test_jobs_list_shows_the_jobs_and_next_runs(env: dict[str, str]) -> None:
    result = ok(invoke(env, "jobs", "list"))

    rows = job_rows(result.output)
    assert sorted(rows) == sorted(JOBS)
    assert "2026-11-26 07:30 CST" in rows["lesson"]
    assert "2026-11-25 12:00 CST" in rows["news"]
    assert "2026-11-25 09:00 CST" in rows["reminders"]
    assert "QIYI_SCHEDULER=off" in flat(result.output)


def test_jobs_list_follows_the_settings(env: dict[str, str]) -> None:
    result = ok(
        invoke(
            {**env, "QIYI_SCHEDULER": "on", "QIYI_LESSON_TIME": "08:15", "QIYI_NEWS_TIME": "08:45"},
            "jobs",
            "list",
        )
    )

    rows = job_rows(result.output)
    assert "2026-11-25 08:15" not in rows["lesson"]  # 09:00 now: tomorrow's
    assert "2026-11-26 08:15 CST" in rows["lesson"]
    assert "2026-11-26 08:45 CST" in rows["news"]
    assert "QIYI_SCHEDULER=off" not in flat(result.output)


# --- outbox list / retry -----------------------------------------------------------------


def test_outbox_list_json_by_state(env: dict[str, str], roster: None, db_file: Path) -> None:
    ok(invoke({**env, "QIYI_REMINDER_TIME": "00:00"}, "push", "reminder"))
    ok(invoke(env, "push", "lesson"))
    execute(db_file, "UPDATE outboxitem SET state = 'failed', last_error = 'x' WHERE id = 4")

    result = ok(invoke(env, "outbox", "list", "--state", "mailbox", "--json"))

    listing = json.loads(result.stdout)
    assert listing["counts"] == {"mailbox": 5, "failed": 1}
    items = listing["items"]
    assert [item["id"] for item in items] == [6, 5, 3, 2, 1]  # newest first
    assert {item["state"] for item in items} == {"mailbox"}
    assert [item["kind"] for item in items] == ["lesson"] * 2 + ["reminder"] * 3
    assert {item["due_at"] for item in items} == {"2026-11-25 09:00"}
    assert all(item["attempts"] == 0 and item["error"] == "" for item in items)

    limited = json.loads(ok(invoke(env, "outbox", "list", "--limit", "2", "--json")).stdout)
    assert [item["id"] for item in limited["items"]] == [6, 5]

    failed = json.loads(ok(invoke(env, "outbox", "list", "--state", "failed", "--json")).stdout)
    assert [(item["id"], item["error"]) for item in failed["items"]] == [(4, "x")]


def test_outbox_retry_puts_a_failed_push_back_and_dispatches_it(
    env: dict[str, str], roster: None, db_file: Path
) -> None:
    ok(invoke({**env, "QIYI_REMINDER_TIME": "00:00"}, "push", "reminder"))
    execute(
        db_file,
        "UPDATE outboxitem SET state = 'failed', attempts = 5, last_error = '-1 system busy'"
        " WHERE id IN (1, 2)",
    )
    tries_before = query(db_file, "SELECT COUNT(*) FROM deliveryattempt WHERE outbox_id = 1")

    result = ok(invoke(env, "outbox", "retry", "--id", "1"))

    assert "1 failed pushes queued again." in flat(result.output)
    assert outcomes(result.output)["mailbox"] == 1
    assert outbox_rows(db_file) == [
        (1, "reminder", "mailbox", 0),
        (2, "reminder", "failed", 5),  # not this one: --id
        (3, "reminder", "mailbox", 0),
    ]
    tries_after = query(db_file, "SELECT COUNT(*) FROM deliveryattempt WHERE outbox_id = 1")
    assert tries_after[0][0] == tries_before[0][0] + 1

    rest = ok(invoke(env, "outbox", "retry"))

    assert "1 failed pushes queued again." in flat(rest.output)
    assert outcomes(rest.output)["mailbox"] == 1
    assert [row[2] for row in outbox_rows(db_file)] == ["mailbox"] * 3

    nothing = ok(invoke(env, "outbox", "retry"))

    assert "0 failed pushes queued again." in flat(nothing.output)
    assert sum(outcomes(nothing.output).values()) == 0
