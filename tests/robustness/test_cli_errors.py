"""A newcomer's mistakes on the command line: a database URL as the guides write it, errors
as one line (a traceback only with `--debug`), and no empty database made by reading."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import inspect
from typer.testing import CliRunner, Result

from bot.cli import app
from bot.cli_runtime import NoDatabase
from bot.settings import ConfigError, load_settings
from data.db import async_url, create_engine
from tests.conftest import _reset_postgres
from tests.robustness.cli_process import one_line, qiyi, qiyi_with_a_bug

ROSTER = "member_id,name,branch,role\n1001,张三,第一党支部,member\n"


pytestmark = pytest.mark.usefixtures("isolated_cli")


def invoke(url: str, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"QIYI_DATABASE_URL": url})


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


async def table_names(url: str) -> list[str]:
    engine = create_engine(url)
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    await engine.dispose()
    return names


def roster_file() -> str:
    Path("roster.csv").write_text(ROSTER, encoding="utf-8")
    return "roster.csv"


# --- 1. QIYI_DATABASE_URL as the guides write it -----------------------------------------


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("sqlite:///var/qiyi.db", "sqlite+aiosqlite:///var/qiyi.db"),
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://qiyi:s%40cret@db/qiyi", "postgresql+asyncpg://qiyi:s%40cret@db/qiyi"),
        (
            "postgres://qiyi@db:5433/qiyi?ssl=require",
            "postgresql+asyncpg://qiyi@db:5433/qiyi?ssl=require",
        ),
        ("sqlite+aiosqlite:///q.db", "sqlite+aiosqlite:///q.db"),
        ("postgresql+asyncpg://q@db/q", "postgresql+asyncpg://q@db/q"),
    ],
)
def test_a_url_without_the_async_driver_gets_it(given: str, used: str) -> None:
    assert async_url(given) == used
    assert load_settings(database_url=given).database_url == used


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ("mysql://qiyi@db/qiyi", "mysql is not supported"),
        ("postgresql+psycopg2://qiyi:secret@db/qiyi", "psycopg2 is not asynchronous"),
        ("sqlite+pysqlite:///q.db", "pysqlite is not asynchronous"),
        ("qiyi.db", "not a database URL"),
    ],
)
def test_an_unusable_url_is_refused_naming_the_setting(given: str, named: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(database_url=given)

    message = str(refused.value)
    assert message.startswith("QIYI_DATABASE_URL: ")
    assert named in message
    assert "secret" not in message  # never the password
    assert "Value error" not in message  # pydantic's prefix is noise


def test_the_cli_works_on_a_sqlite_url_without_driver(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'plain.db'}"

    ok(invoke(url, "members", "import", roster_file()))
    listing = json.loads(ok(invoke(url, "members", "list", "--json")).stdout)

    assert [row["member_id"] for row in listing] == ["1001"]


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_the_cli_works_on_a_postgresql_url_without_driver(pg_url: str, scheme: str) -> None:
    asyncio.run(_reset_postgres(pg_url))
    url = pg_url.replace("postgresql+asyncpg", scheme, 1)
    assert "+asyncpg" not in url

    ok(invoke(url, "members", "import", roster_file()))
    listing = json.loads(ok(invoke(url, "members", "list", "--json")).stdout)

    assert [row["member_id"] for row in listing] == ["1001"]


def test_mysql_stops_the_program_with_one_line_naming_the_setting(tmp_path: Path) -> None:
    process = qiyi(tmp_path, {"QIYI_DATABASE_URL": "mysql://qiyi@db/qiyi"}, "members", "list")

    line = one_line(process, status=2)
    assert "QIYI_DATABASE_URL" in line
    assert "mysql" in line


# --- 2. one line on stderr, a traceback only with --debug --------------------------------


def test_an_expected_error_is_one_line_and_status_1(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'missing.db'}"

    process = qiyi(tmp_path, {"QIYI_DATABASE_URL": url}, "members", "list")

    line = one_line(process)
    assert str(tmp_path / "missing.db") in line
    assert process.stdout == ""


def test_an_unreachable_database_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    # A port nothing listens on (the discard port, refused at once on loopback).
    url = "postgresql://qiyi:secret@127.0.0.1:9/qiyi"

    process = qiyi(tmp_path, {"QIYI_DATABASE_URL": url}, "members", "list")

    line = one_line(process)
    assert "QIYI_DATABASE_URL" in line
    assert "127.0.0.1:9" in line
    assert "secret" not in line


def test_a_bug_is_one_line_pointing_at_debug(tmp_path: Path) -> None:
    process = qiyi_with_a_bug(tmp_path, {}, "read_all", "content", "sync")

    line = one_line(process)
    assert "RuntimeError: the injected bug" in line
    assert "--debug" in line
    assert "second line" not in process.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    process = qiyi_with_a_bug(tmp_path, {}, "read_all", "--debug", "content", "sync")

    assert process.returncode == 1
    assert "Traceback" in process.stderr
    assert "the injected bug" in process.stderr
    assert "content_sync" in process.stderr  # where it happened


# --- 3. reading never creates a database -------------------------------------------------

READERS = [
    pytest.param(["members", "list"], id="members-list"),
    pytest.param(["members", "list", "--json"], id="members-list-json"),
    pytest.param(["outbox", "list"], id="outbox-list"),
    pytest.param(["groups", "list"], id="groups-list"),
    pytest.param(["report", "month", "2026-10", "--out", "out"], id="report"),
    pytest.param(["push", "lesson", "--dry-run"], id="push-dry-run"),
    pytest.param(["chat", "--as", "1001"], id="chat"),
]


@pytest.mark.parametrize("command", READERS)
def test_reading_a_missing_sqlite_file_creates_nothing(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "var" / "qiyi.db"

    result = invoke(f"sqlite+aiosqlite:///{missing}", *command)

    assert result.exit_code == 1
    assert isinstance(result.exception, NoDatabase)
    assert str(missing) in str(result.exception)
    assert "qiyi db upgrade" in str(result.exception)
    assert not (tmp_path / "var").exists()  # not the file, not its folder
    assert not (tmp_path / "out").exists()


def test_reading_an_empty_postgresql_database_creates_no_tables(pg_url: str) -> None:
    asyncio.run(_reset_postgres(pg_url))

    result = invoke(pg_url, "members", "list")

    assert isinstance(result.exception, NoDatabase)
    assert asyncio.run(table_names(pg_url)) == []


def test_commands_that_fill_the_database_still_create_it(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'new' / 'qiyi.db'}"

    ok(invoke(url, "members", "import", roster_file()))

    assert (tmp_path / "new" / "qiyi.db").exists()
    assert json.loads(ok(invoke(url, "members", "list", "--json")).stdout)[0]["name"] == "张三"
