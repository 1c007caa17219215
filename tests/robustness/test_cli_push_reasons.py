"""`qiyi push … [--dry-run]` says why nothing is due: the reminder time not come, nothing new
published, everyone at the goal, reminders off, nobody reachable, the quiet hours — on SQLite
and PostgreSQL, the commands' clock fixed."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner, Result

import bot.cli
import bot.cli_pushes
from bot.clock import FixedClock
from tests.conftest import MORNING, _reset_postgres

ROSTER = [
    "member_id,name,branch,role",
    "1001,张三,第一党支部,member",
    "1002,李四,第一党支部,member",
    "2001,赵强,第二党支部,secretary",
]
MEMBERS = ("1001", "1002", "2001")
NEWEST_LESSON = "弘扬志愿服务精神"  # published by MORNING (Wednesday 2026-11-25 09:00)
NEXT_LESSON = "廉洁自律与中央八项规定精神"  # published 2026-11-30 07:30


class Now:
    """The clock every command of a test reads; a test moves it."""

    at = MORNING

    @classmethod
    def clock(cls, zone: ZoneInfo) -> FixedClock:
        return FixedClock(cls.at, zone)


pytestmark = pytest.mark.usefixtures("isolated_cli")


@pytest.fixture(autouse=True)
def frozen_clock(isolated_cli: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's clock stands at MORNING (tests move `Now.at`)."""
    monkeypatch.setattr(Now, "at", MORNING)
    monkeypatch.setattr(bot.cli_pushes, "SystemClock", Now.clock)
    monkeypatch.setattr(bot.cli, "SystemClock", Now.clock)  # `chat`: check-ins on that day


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    if database_url.startswith("postgresql"):
        asyncio.run(_reset_postgres(database_url))
    return {"QIYI_DATABASE_URL": database_url, "QIYI_SCHEDULER": "off"}


def invoke(env: dict[str, str], *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(bot.cli.app, list(args), env=env, input=input)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def flat(text: str) -> str:
    return " ".join(text.split())


def say(env: dict[str, str], member: str, text: str) -> None:
    ok(invoke(env, "chat", "--as", member, input=text + "\n"))


@pytest.fixture
def roster(env: dict[str, str]) -> None:
    """The roster and the shipped content; nobody bound yet."""
    Path("roster.csv").write_text("\n".join(ROSTER) + "\n", encoding="utf-8")
    ok(invoke(env, "members", "import", "roster.csv"))
    ok(invoke(env, "content", "sync"))


@pytest.fixture
def bound(env: dict[str, str], roster: None) -> None:
    """Every member bound (a console account each)."""
    for member in MEMBERS:
        say(env, member, "")


def test_before_the_reminder_time(env: dict[str, str], bound: None) -> None:
    result = ok(invoke(env, "push", "reminder", "--dry-run"))

    assert flat(result.output) == (
        "reminder: would enqueue 0 the reminder time has not come: it is 09:00, the earliest"
        " reminder is at 20:30 (QIYI_REMINDER_TIME=20:30, or a member's own 提醒 time)"
    )


def test_a_member_s_own_earlier_time_is_named(env: dict[str, str], bound: None) -> None:
    say(env, "1002", "提醒 18:30")

    result = ok(invoke(env, "push", "reminder", "--dry-run"))

    assert "the earliest reminder is at 18:30" in flat(result.output)


def test_everyone_at_the_goal(env: dict[str, str], bound: None) -> None:
    for member in MEMBERS:
        say(env, member, "学习 120")

    result = ok(invoke({**env, "QIYI_REMINDER_TIME": "08:00"}, "push", "reminder", "--dry-run"))

    assert "would enqueue 0" in flat(result.output)
    assert "everyone whose reminder time has come is at today's goal (120 minutes)" in flat(
        result.output
    )


def test_reminders_turned_off(env: dict[str, str], bound: None) -> None:
    for member in MEMBERS:
        say(env, member, "提醒 关闭")

    result = ok(invoke({**env, "QIYI_REMINDER_TIME": "08:00"}, "push", "reminder", "--dry-run"))

    assert "has turned the reminder off" in flat(result.output)


def test_nobody_reachable(env: dict[str, str], roster: None) -> None:
    result = ok(invoke({**env, "QIYI_REMINDER_TIME": "08:00"}, "push", "reminder", "--dry-run"))

    assert "no member can be reached: nobody has bound a chat account" in flat(result.output)


def test_reminded_already(env: dict[str, str], bound: None) -> None:
    early = {**env, "QIYI_REMINDER_TIME": "08:00"}
    assert "reminder: enqueued 3" in flat(ok(invoke(early, "push", "reminder")).output)

    result = ok(invoke(early, "push", "reminder", "--dry-run"))

    assert "the 3 members due were reminded today already" in flat(result.output)


def test_nothing_new_published(env: dict[str, str], bound: None) -> None:
    ok(invoke(env, "push", "lesson"))

    result = ok(invoke(env, "push", "lesson", "--dry-run"))

    assert flat(result.output) == (
        f"lesson: would enqueue 0 nothing new published: the last lesson, 《{NEWEST_LESSON}》,"
        f" was pushed 2026-11-25 09:00; the next, 《{NEXT_LESSON}》, is published 2026-11-30 07:30"
    )


def test_no_lesson_loaded(env: dict[str, str]) -> None:
    ok(invoke(env, "db", "upgrade"))

    result = ok(invoke(env, "push", "lesson", "--dry-run"))

    assert "no lesson in the database (`qiyi content sync` loads them)" in flat(result.output)


def test_nothing_published_yet(env: dict[str, str], bound: None) -> None:
    Now.at = dt.datetime(2026, 10, 1, 9, 0, tzinfo=MORNING.tzinfo)

    result = ok(invoke(env, "push", "news", "--dry-run"))

    assert "no news is published yet; the next, 《" in flat(result.output)


def test_the_lesson_found_nobody(env: dict[str, str], roster: None) -> None:
    result = ok(invoke(env, "push", "lesson", "--dry-run"))

    assert f"lesson ({NEWEST_LESSON}): would enqueue 0" in flat(result.output)
    assert "no member can be reached" in flat(result.output)


def test_quiet_hours_defer_what_is_enqueued(env: dict[str, str], bound: None) -> None:
    Now.at = MORNING.replace(hour=23)

    result = ok(invoke(env, "push", "reminder", "--dry-run"))

    assert flat(result.output) == (
        "reminder: would enqueue 3 due at 2026-11-26 07:00, after the quiet hours"
        " (QIYI_QUIET_HOURS=22:00-07:00): nothing to send before then"
    )


def test_a_push_due_now_needs_no_explanation(env: dict[str, str], bound: None) -> None:
    result = ok(invoke(env, "push", "lesson", "--dry-run"))

    assert flat(result.output) == f"lesson ({NEWEST_LESSON}): would enqueue 3"


def test_a_real_push_explains_too(env: dict[str, str], bound: None) -> None:
    result = ok(invoke(env, "push", "reminder"))

    assert "reminder: enqueued 0" in flat(result.output)
    assert "the reminder time has not come" in flat(result.output)


def test_a_report_without_staff_to_reach(env: dict[str, str], roster: None) -> None:
    result = ok(invoke(env, "push", "month-report", "--dry-run"))

    assert "month-report (2026-11): would enqueue 0" in flat(result.output)
    assert "no admin or secretary can be reached" in flat(result.output)
