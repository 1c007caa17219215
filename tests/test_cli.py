"""The `qiyi` command line, driven through typer's CliRunner (and a subprocess for `main()`)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from alembic.script import ScriptDirectory
from openpyxl import Workbook
from sqlmodel import SQLModel
from typer.testing import CliRunner, Result

import data.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from bot.cli import app
from bot.settings import ConfigError
from data import migrate

HEADER = "member_id,name,branch,role"
GOOD_ROSTER = [
    "1001,张三,第一党支部,member",
    "1002,李四,第一党支部,member",
    "2001,赵强,第二党支部,secretary",
]
WECHAT_TOKEN = "cli-test-token"
APPID = "wx-test-appid"
SECRET = "test-secret"
SUBPROCESS_TIMEOUT = 60


pytestmark = pytest.mark.usefixtures("isolated_cli")


@pytest.fixture
def env(sqlite_url: str) -> dict[str, str]:
    return {"QIYI_DATABASE_URL": sqlite_url, "QIYI_SCHEDULER": "off"}


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    """The SQLite file behind the `sqlite_url` fixture."""
    return tmp_path / "qiyi.db"


def invoke(env: dict[str, str], *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env, input=input)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def flat(text: str) -> str:
    """The text with whitespace runs collapsed: rich wraps long lines at 80 columns."""
    return " ".join(text.split())


def write_csv(name: str, lines: list[str], encoding: str = "utf-8") -> Path:
    path = Path(name)
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def listing(env: dict[str, str]) -> dict[str, dict[str, str]]:
    result = invoke(env, "members", "list", "--json")
    assert result.exit_code == 0, result.output
    return {row["member_id"]: row for row in json.loads(result.stdout)}


def query(db_file: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db_file) as connection:
        return list(connection.execute(sql))


# --- members import / list ---------------------------------------------------------------


def test_import_then_list_shows_members_with_branches(env: dict[str, str]) -> None:
    path = write_csv("roster.csv", [HEADER, *GOOD_ROSTER])

    result = invoke(env, "members", "import", str(path))

    assert result.exit_code == 0, result.output
    assert "3 added, 0 updated" in flat(result.output)
    assert listing(env) == {
        "1001": {
            "member_id": "1001",
            "name": "张三",
            "branch": "第一党支部",
            "role": "member",
            "channels": "",
            "left_on": "",
            "rungs": ["mailbox"],
        },
        "1002": {
            "member_id": "1002",
            "name": "李四",
            "branch": "第一党支部",
            "role": "member",
            "channels": "",
            "left_on": "",
            "rungs": ["mailbox"],
        },
        "2001": {
            "member_id": "2001",
            "name": "赵强",
            "branch": "第二党支部",
            "role": "secretary",
            "channels": "",
            "left_on": "",
            "rungs": ["mailbox"],
        },
    }


def test_list_shows_each_members_reachable_rungs(env: dict[str, str], db_file: Path) -> None:
    ok(invoke(env, "members", "import", str(write_csv("r.csv", [HEADER, *GOOD_ROSTER]))))
    ids = dict(query(db_file, "SELECT roster_id, id FROM member"))
    with sqlite3.connect(db_file) as connection:
        connection.executemany(
            "INSERT INTO binding (channel, external_id, member_id, reachable, bound_at,"
            " window_until, window_budget, window_used)"
            " VALUES (?, ?, ?, ?, '2026-11-25 01:00:00', ?, 5, 0)",
            [
                ("wechat", "openid-1", ids["1001"], True, "2999-01-01 00:00:00"),  # open
                ("wecom", "zhangsan", ids["1001"], True, None),
                ("wechat", "openid-2", ids["1002"], False, None),  # unfollowed
                ("qq", "20001", ids["2001"], True, None),
            ],
        )
    configured = env | {
        "QIYI_WECHAT_APPID": APPID,
        "QIYI_WECHAT_SECRET": SECRET,
        "QIYI_WECOM_CORP_ID": "ww-corp",
        "QIYI_WECOM_AGENT_ID": "1000002",
        "QIYI_WECOM_SECRET": "app-secret",
        "QIYI_ONEBOT_API_URL": "http://127.0.0.1:3000",
        "QIYI_WECHAT_TEMPLATE_REMINDER": "tmpl-1",
    }

    rows = {
        row["member_id"]: row
        for row in json.loads(ok(invoke(configured, "members", "list", "--json")).stdout)
    }

    assert rows["1001"]["rungs"] == ["wechat-window", "wecom", "wechat-template", "mailbox"]
    assert rows["1002"]["rungs"] == ["mailbox"]
    assert rows["2001"]["rungs"] == ["qq", "mailbox"]
    reordered = configured | {"QIYI_DELIVERY_ORDER": "qq,wecom", "COLUMNS": "200"}
    table = flat(ok(invoke(reordered, "members", "list")).output)
    assert "企业微信、留言箱" in table  # 1001: the window and the template are not in this ladder
    assert "QQ、留言箱" in table
    # Without the WeCom app's API, WeCom is no rung.
    rows = {
        row["member_id"]: row
        for row in json.loads(ok(invoke(env, "members", "list", "--json")).stdout)
    }
    assert rows["1001"]["rungs"] == ["mailbox"]


def test_reimport_updates_members_instead_of_duplicating(env: dict[str, str]) -> None:
    ok(invoke(env, "members", "import", str(write_csv("a.csv", [HEADER, *GOOD_ROSTER]))))
    changed = [HEADER, "1001,张三丰,第一党支部,admin", *GOOD_ROSTER[1:]]

    result = invoke(env, "members", "import", str(write_csv("b.csv", changed)))

    assert result.exit_code == 0, result.output
    assert "0 added, 3 updated" in flat(result.output)
    members = listing(env)
    assert sorted(members) == ["1001", "1002", "2001"]
    assert members["1001"]["name"] == "张三丰"
    assert members["1001"]["role"] == "admin"
    assert members["1001"]["branch"] == "第一党支部"
    assert members["1002"]["name"] == "李四"


BAD_ROSTERS = [
    pytest.param(
        [HEADER, "1001,张三,第一党支部,member", "1002,李四,第一党支部,boss"],
        ["line 3", "boss"],
        id="unknown-role",
    ),
    pytest.param(
        [HEADER, "1001,张三,第一党支部,member", "1002,,第一党支部,member"],
        ["line 3", "name is empty"],
        id="empty-name",
    ),
    pytest.param(
        [HEADER, *GOOD_ROSTER, "1001,张三,第一党支部,member"],
        ["line 5", "member_id 1001 repeats line 2"],
        id="duplicate-member-id",
    ),
]


@pytest.mark.parametrize(("lines", "expected"), BAD_ROSTERS)
def test_bad_row_rejects_the_whole_file(
    env: dict[str, str], db_file: Path, lines: list[str], expected: list[str]
) -> None:
    result = invoke(env, "members", "import", str(write_csv("roster.csv", lines)))

    assert result.exit_code == 1
    message = flat(result.output)
    for part in expected:
        assert part in message
    assert "Nothing was imported" in message
    # Not even the good rows before the bad one: the database was not even created.
    assert not db_file.exists()


def test_every_problem_is_printed_at_once(env: dict[str, str], db_file: Path) -> None:
    lines = [
        HEADER,
        "1001,张三,第一党支部,member",
        "1002,,第一党支部,member",
        "1003,王芳,第一党支部,boss",
        "1001,张三,第一党支部,member",
    ]

    result = invoke(env, "members", "import", str(write_csv("roster.csv", lines)))

    assert result.exit_code == 1
    message = flat(result.output)
    assert "3 problem(s)" in message
    assert "line 3: name is empty" in message
    assert "line 4: role 'boss' is not member, secretary or admin" in message
    assert "line 5: member_id 1001 repeats line 2" in message
    assert "Nothing was imported" in message
    assert not db_file.exists()


def test_a_long_list_of_problems_is_cut_with_a_count(env: dict[str, str]) -> None:
    lines = [HEADER, *(f"{n},,第一党支部,member" for n in range(1, 61))]

    result = invoke(env, "members", "import", str(write_csv("roster.csv", lines)))

    message = flat(result.output)
    assert "60 problem(s)" in message
    assert "line 51: name is empty" in message
    assert "line 52: name is empty" not in message
    assert "… and 10 more" in message


def test_bad_row_leaves_existing_roster_unchanged(env: dict[str, str]) -> None:
    ok(invoke(env, "members", "import", str(write_csv("good.csv", [HEADER, *GOOD_ROSTER]))))
    before = listing(env)
    # Good rows (an update and a new member) come before the bad line.
    bad = [
        HEADER,
        "1001,张三丰,第三党支部,admin",
        "2002,陈静,第二党支部,member",
        "2003,刘洋,第二党支部,boss",
    ]

    result = invoke(env, "members", "import", str(write_csv("bad.csv", bad)))

    assert result.exit_code == 1
    assert "line 4" in flat(result.output)
    assert listing(env) == before


def test_import_xlsx_with_numeric_member_ids(env: dict[str, str]) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["member_id", "name", "branch", "role"])
    sheet.append([1001, "张三", "第一党支部", "member"])
    sheet.append([1002.0, "李四", "第一党支部", "secretary"])
    sheet.append([None, None, None, None])  # a blank row is skipped
    sheet.append([2001, "赵强", "第二党支部", "admin"])
    workbook.save("roster.xlsx")

    result = invoke(env, "members", "import", "roster.xlsx")

    assert result.exit_code == 0, result.output
    members = listing(env)
    assert sorted(members) == ["1001", "1002", "2001"]
    assert members["1001"]["name"] == "张三"
    assert members["1002"]["role"] == "secretary"
    assert members["2001"]["branch"] == "第二党支部"
    assert members["2001"]["role"] == "admin"


def test_import_gbk_csv_with_chinese_headers_and_roles(env: dict[str, str]) -> None:
    lines = ["工号,姓名,支部,角色", "1001,张三,第一党支部,党员", "1003,王芳,第一党支部,书记"]
    path = write_csv("花名册.csv", lines, encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")  # really not UTF-8

    result = invoke(env, "members", "import", str(path))

    assert result.exit_code == 0, result.output
    members = listing(env)
    assert members["1001"] == {
        "member_id": "1001",
        "name": "张三",
        "branch": "第一党支部",
        "role": "member",
        "channels": "",
        "left_on": "",
        "rungs": ["mailbox"],  # bound nowhere: only the mailbox reaches them
    }
    assert members["1003"]["name"] == "王芳"
    assert members["1003"]["role"] == "secretary"


def test_wrong_header_names_the_expected_header(env: dict[str, str], db_file: Path) -> None:
    path = write_csv("roster.csv", ["id,name,branch,role", "1001,张三,第一党支部,member"])

    result = invoke(env, "members", "import", str(path))

    assert result.exit_code == 1
    assert "member_id,name,branch,role" in flat(result.output)
    assert not db_file.exists()


# --- content sync ------------------------------------------------------------------------


def article_counts(db_file: Path) -> dict[str, int]:
    return dict(query(db_file, "SELECT kind, COUNT(*) FROM article GROUP BY kind"))


def test_content_sync_adds_then_updates(env: dict[str, str], db_file: Path) -> None:
    first = invoke(env, "content", "sync")

    assert first.exit_code == 0, first.output
    assert "10 added, 0 updated" in flat(first.output)
    assert article_counts(db_file) == {"lesson": 5, "news": 5}

    second = invoke(env, "content", "sync")

    assert second.exit_code == 0, second.output
    assert "0 added, 10 updated" in flat(second.output)
    assert article_counts(db_file) == {"lesson": 5, "news": 5}


GOOD_LESSON = """---
slug: lesson-good
title: 一节好课
publish_at: 2026-11-02T07:30:00+08:00
---
正文。
"""


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param("---\nslug: news-bad\ntitle: [unclosed\n---\n正文。\n", id="bad-yaml"),
        pytest.param(
            "---\nslug: news-bad\ntitle: 没有时区\npublish_at: 2026-11-02T07:30:00\n---\n正文\n",
            id="naive-publish-at",
        ),
        pytest.param("slug: news-bad\n正文。\n", id="no-front-matter"),
    ],
)
def test_content_sync_rejects_broken_front_matter(
    env: dict[str, str], db_file: Path, broken: str
) -> None:
    ok(invoke(env, "db", "upgrade"))
    (Path("site") / "lessons").mkdir(parents=True)
    (Path("site") / "news").mkdir(parents=True)
    (Path("site") / "lessons" / "01-good.md").write_text(GOOD_LESSON, encoding="utf-8")
    (Path("site") / "news" / "01-bad.md").write_text(broken, encoding="utf-8")

    result = invoke(env, "content", "sync", "--folder", "site")

    assert result.exit_code == 1
    assert str(Path("site") / "news" / "01-bad.md") in flat(result.output)
    assert "01-good.md" not in result.output
    # The good lesson is not synced either.
    assert article_counts(db_file) == {}


# --- chat --------------------------------------------------------------------------------


def test_chat_as_member_answers_commands(env: dict[str, str]) -> None:
    ok(invoke(env, "members", "import", str(write_csv("r.csv", [HEADER, *GOOD_ROSTER]))))

    result = invoke(env, "chat", "--as", "1001", input="帮助\n学习 30\n今日\n")

    assert result.exit_code == 0, result.output
    assert "可用指令" in result.output
    assert "学习 <时长> [备注]" in result.output  # the help list, unmangled by markup
    assert "今日 — 查看今天的学习进度" in result.output
    assert "已记录 30 分钟" in result.output
    assert "今日学习：30/120 分钟" in result.output
    # The console account was bound to the member on first use.
    assert listing(env)["1001"]["channels"] == "console"


def test_chat_as_unknown_member_fails(env: dict[str, str]) -> None:
    ok(invoke(env, "members", "import", str(write_csv("r.csv", [HEADER, *GOOD_ROSTER]))))

    result = invoke(env, "chat", "--as", "9999", input="帮助\n")

    assert result.exit_code == 1
    assert "9999" in flat(result.output)
    assert "可用指令" not in result.output


# --- db upgrade --------------------------------------------------------------------------


def test_db_upgrade_creates_the_tables(env: dict[str, str], db_file: Path) -> None:
    result = invoke(env, "db", "upgrade")

    assert result.exit_code == 0, result.output
    tables = {row[0] for row in query(db_file, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert set(SQLModel.metadata.tables) <= tables
    head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    assert query(db_file, "SELECT version_num FROM alembic_version") == [(head,)]


# --- configuration errors (through main(), in a subprocess) ------------------------------


def run_main(cwd: Path, extra_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), **extra_env}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )


def assert_one_line_naming(process: subprocess.CompletedProcess[str], name: str) -> None:
    assert process.returncode == 2, process.stderr
    assert "Traceback" not in process.stderr
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1, process.stderr
    assert name in lines[0]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        pytest.param("QIYI_TIMEZONE", "Mars/Base", id="timezone"),
        pytest.param("QIYI_WECHAT_AES_KEY", "too-short", id="aes-key"),
    ],
)
def test_bad_setting_is_one_line_naming_it(
    tmp_path: Path, sqlite_url: str, variable: str, value: str
) -> None:
    process = run_main(
        tmp_path, {"QIYI_DATABASE_URL": sqlite_url, variable: value}, "members", "list"
    )

    assert_one_line_naming(process, variable)


def test_serve_without_wechat_token_is_one_line(tmp_path: Path, sqlite_url: str) -> None:
    process = run_main(
        tmp_path,
        {"QIYI_DATABASE_URL": sqlite_url, "QIYI_SCHEDULER": "off"},
        "serve",
        "--port",
        "0",
    )

    assert_one_line_naming(process, "QIYI_WECHAT_TOKEN")


# --- wechat menu -------------------------------------------------------------------------


def keys_of(node: Any) -> set[str]:
    """Every dict key anywhere in a JSON value."""
    if isinstance(node, dict):
        return set(node) | {key for value in node.values() for key in keys_of(value)}
    if isinstance(node, list):
        return {key for value in node for key in keys_of(value)}
    return set()


def test_menu_prints_platform_json(env: dict[str, str]) -> None:
    result = invoke(env, "wechat", "menu")

    assert result.exit_code == 0, result.output
    assert "\\u" not in result.stdout  # Chinese printed as is
    menu = json.loads(result.stdout)
    assert "command" not in keys_of(menu)
    buttons = menu["button"]
    assert [button["name"] for button in buttons] == ["学习打卡", "微党课", "帮助"]
    assert [sub["key"] for sub in buttons[0]["sub_button"]] == [
        "STUDY_TODAY",
        "POINTS_CARD",
        "RANKING",
    ]
    assert buttons[0]["sub_button"][0] == {
        "type": "click",
        "name": "今日进度",
        "key": "STUDY_TODAY",
    }
    assert buttons[2] == {"type": "click", "name": "帮助", "key": "HELP"}


class FakeWeChat:
    """The two WeChat API endpoints `wechat menu --push` calls, recording what it sent."""

    def __init__(self, menu_answer: dict[str, Any]) -> None:
        self.menu_answer = menu_answer
        self.token_bodies: list[Any] = []
        self.menu_requests: list[tuple[dict[str, str], str, bytes]] = []

    def app(self) -> web.Application:
        application = web.Application()
        application.router.add_post("/cgi-bin/stable_token", self.stable_token)
        application.router.add_post("/cgi-bin/menu/create", self.create_menu)
        return application

    async def stable_token(self, request: web.Request) -> web.Response:
        self.token_bodies.append(await request.json())
        return web.json_response({"access_token": "TOKEN", "expires_in": 7200})

    async def create_menu(self, request: web.Request) -> web.Response:
        content_type = request.headers.get("Content-Type", "")
        self.menu_requests.append((dict(request.query), content_type, await request.read()))
        return web.json_response(self.menu_answer)


async def push_menu(fake: FakeWeChat, env: dict[str, str]) -> Result:
    async with TestServer(fake.app(), host="127.0.0.1") as server:
        push_env = {
            **env,
            "QIYI_WECHAT_API_BASE": str(server.make_url("")).rstrip("/"),
            "QIYI_WECHAT_APPID": APPID,
            "QIYI_WECHAT_SECRET": SECRET,
        }
        # The CLI runs its own event loop: give it a thread so this loop keeps serving.
        return await asyncio.to_thread(invoke, push_env, "wechat", "menu", "--push")


async def test_menu_push_installs_the_menu(env: dict[str, str]) -> None:
    fake = FakeWeChat({"errcode": 0, "errmsg": "ok"})

    result = await push_menu(fake, env)

    assert result.exit_code == 0, result.output
    assert "Menu installed." in result.output
    assert fake.token_bodies == [
        {
            "grant_type": "client_credential",
            "appid": APPID,
            "secret": SECRET,
            "force_refresh": False,
        }
    ]
    assert len(fake.menu_requests) == 1
    query_args, content_type, raw = fake.menu_requests[0]
    assert query_args == {"access_token": "TOKEN"}
    assert content_type.startswith("application/json")
    # The platform shows \uXXXX escapes literally: the names must go as UTF-8.
    assert "学习打卡".encode() in raw
    assert "今日进度".encode() in raw
    assert b"\\u" not in raw
    sent = json.loads(raw.decode("utf-8"))
    assert "command" not in keys_of(sent)
    assert [button["name"] for button in sent["button"]] == ["学习打卡", "微党课", "帮助"]


async def test_menu_push_reports_a_platform_error(env: dict[str, str]) -> None:
    fake = FakeWeChat({"errcode": 40164, "errmsg": "invalid ip 203.0.113.9, not in whitelist"})

    result = await push_menu(fake, env)

    assert result.exit_code == 1
    assert "Menu installed." not in result.output
    message = flat(result.output)
    assert "40164" in message
    assert "not in whitelist" in message


def test_menu_push_without_appid_is_a_config_error(env: dict[str, str]) -> None:
    result = invoke(env, "wechat", "menu", "--push")

    assert isinstance(result.exception, ConfigError)
    assert "QIYI_WECHAT_APPID" in str(result.exception)


# --- wechat sample -----------------------------------------------------------------------


def test_sample_prints_a_correctly_signed_curl(env: dict[str, str]) -> None:
    result = invoke(
        {**env, "QIYI_WECHAT_TOKEN": WECHAT_TOKEN}, "wechat", "sample", "--text", "积分"
    )

    assert result.exit_code == 0, result.output
    words = shlex.split(result.stdout.strip())
    assert words[:4] == ["curl", "-s", "-X", "POST"]
    assert words[5] == "--data-binary"
    url, body = words[4], words[6]
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("http", "127.0.0.1:8080", "/wechat")
    params = {name: values[0] for name, values in parse_qs(parts.query).items()}
    expected = hashlib.sha1(
        "".join(sorted([WECHAT_TOKEN, params["timestamp"], params["nonce"]])).encode()
    ).hexdigest()
    assert params["signature"] == expected
    assert params["openid"] == "o_demo_member_1001"
    assert "<Content><![CDATA[积分]]></Content>" in body
    assert "<FromUserName><![CDATA[o_demo_member_1001]]></FromUserName>" in body
