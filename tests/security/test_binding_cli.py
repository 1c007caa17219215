"""`qiyi members invite | unbind | set-role | leave` and `import --mark-left`, through typer's
CliRunner on SQLite, each change audited as the CLI's actor (`cli:<user>@<host>`)."""

from __future__ import annotations

import asyncio
import getpass
import json
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner, Result

from bot.cli import app
from bot.clock import FixedClock
from bot.messages import Sender
from data import members
from data.db import create_engine, session_factory, transaction
from data.invitations import code_matches, normalize_code
from tests.conftest import MORNING

HEADER = "member_id,name,branch,role"
ROSTER = [
    "1001,张三,第一党支部,member",
    "1002,李四,第一党支部,member",
    "1003,王芳,第一党支部,secretary",
    "2001,赵强,第二党支部,member",
]


pytestmark = pytest.mark.usefixtures("isolated_cli")


@pytest.fixture
def env(sqlite_url: str) -> dict[str, str]:
    return {"QIYI_DATABASE_URL": sqlite_url, "QIYI_SCHEDULER": "off"}


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    return tmp_path / "qiyi.db"


def invoke(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def write_csv(name: str, lines: list[str]) -> Path:
    path = Path(name)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def query(db_file: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db_file) as connection:
        return list(connection.execute(sql))


def audit(db_file: Path, action: str) -> list[dict[str, Any]]:
    with sqlite3.connect(db_file) as connection:
        connection.row_factory = sqlite3.Row
        rows = connection.execute("SELECT * FROM auditentry WHERE action = ? ORDER BY id", [action])
        return [dict(row) for row in rows]


def cli_label() -> str:
    return f"cli:{getpass.getuser()}@{socket.gethostname()}"


def bind(url: str, roster_id: str, *channels: str) -> None:
    """Bindings made in chat before the command runs."""

    async def work() -> None:
        engine = create_engine(url)
        async with transaction(session_factory(engine)) as session:
            member = await members.member_by_roster_id(session, roster_id)
            assert member is not None
            for channel in channels:
                sender = Sender(channel, f"{channel}-{roster_id}")
                await members.bind(session, sender, member, FixedClock(MORNING).now())
        await engine.dispose()

    asyncio.run(work())


@pytest.fixture
def imported(env: dict[str, str]) -> dict[str, str]:
    ok(invoke(env, "members", "import", str(write_csv("roster.csv", [HEADER, *ROSTER]))))
    return env


def channels(db_file: Path, roster_id: str) -> list[str]:
    return [
        channel
        for (channel,) in query(
            db_file,
            "SELECT channel FROM binding JOIN member ON member.id = binding.member_id "
            f"WHERE roster_id = '{roster_id}' ORDER BY channel",
        )
    ]


# --- invite ---------------------------------------------------------------------------------


def test_invite_writes_one_code_per_member_and_stores_only_hashes(
    imported: dict[str, str], db_file: Path
) -> None:
    output = ok(invoke(imported, "members", "invite", "--branch", "第一党支部", "--out", "c.xlsx"))
    assert "Issued 3 invitation codes into c.xlsx" in output

    sheet = load_workbook("c.xlsx").active
    assert sheet is not None
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert rows[0] == ["工号", "姓名", "支部", "邀请码", "请本人在微信或QQ上发送"]
    assert [row[:3] for row in rows[1:]] == [
        ["1001", "张三", "第一党支部"],
        ["1002", "李四", "第一党支部"],
        ["1003", "王芳", "第一党支部"],
    ]
    stored = dict(
        query(
            db_file,
            "SELECT roster_id, code_hash FROM invitation JOIN member ON member.id = member_id",
        )
    )
    for roster_id, _, _, shown, line in rows[1:]:
        code = normalize_code(shown)
        assert code is not None and shown == f"{code[:4]} {code[4:]}"
        assert line == f"绑定 {roster_id} {shown}"
        assert code_matches(code, stored[roster_id])
        assert code not in stored[roster_id]
    issued = audit(db_file, "invitation.issue")
    assert [row["object_id"] for row in issued] == ["1001", "1002", "1003"]
    assert {(row["door"], row["actor"]) for row in issued} == {("cli", cli_label())}
    log = json.dumps(issued, ensure_ascii=False)
    for row in rows[1:]:
        assert str(normalize_code(row[3])) not in log  # the code is not audited


def test_invite_again_replaces_the_code(imported: dict[str, str], db_file: Path) -> None:
    ok(invoke(imported, "members", "invite", "--member", "1001", "--out", "a.xlsx"))
    ok(invoke(imported, "members", "invite", "--member", "1001", "--out", "b.xlsx"))
    first = normalize_code(str(load_workbook("a.xlsx").active["D2"].value))  # type: ignore[index]
    second = normalize_code(str(load_workbook("b.xlsx").active["D2"].value))  # type: ignore[index]
    [(stored,)] = query(db_file, "SELECT code_hash FROM invitation")
    assert first and second and first != second
    assert code_matches(second, stored) and not code_matches(first, stored)


def test_invite_for_an_unknown_member_issues_nothing(
    imported: dict[str, str], db_file: Path
) -> None:
    result = invoke(
        imported, "members", "invite", "--member", "1001", "--member", "7777", "--out", "c.xlsx"
    )
    assert result.exit_code == 1
    assert "7777" in result.output
    assert query(db_file, "SELECT count(*) FROM invitation") == [(0,)]
    assert not Path("c.xlsx").exists()


# --- unbind, set-role, leave ----------------------------------------------------------------


def test_unbind_one_channel_then_all(
    imported: dict[str, str], db_file: Path, sqlite_url: str
) -> None:
    bind(sqlite_url, "1001", "wechat", "qq")

    assert "Unbound 1001 on: wechat." in ok(
        invoke(imported, "members", "unbind", "1001", "--channel", "微信")
    )
    assert channels(db_file, "1001") == ["qq"]
    ok(invoke(imported, "members", "unbind", "1001"))
    assert channels(db_file, "1001") == []

    [first, second] = audit(db_file, "member.unbind")
    assert (first["door"], first["actor"], first["origin"]) == (
        "cli",
        cli_label(),
        socket.gethostname(),
    )
    assert json.loads(first["before"]) == {"channels": ["qq", "wechat"]}
    assert json.loads(first["after"]) == {"channels": ["qq"]}
    assert json.loads(second["after"]) == {"channels": []}


def test_unbind_refuses_an_unknown_channel_or_member(imported: dict[str, str]) -> None:
    assert invoke(imported, "members", "unbind", "1001", "--channel", "短信").exit_code == 1
    assert invoke(imported, "members", "unbind", "7777").exit_code == 1


def test_set_role(imported: dict[str, str], db_file: Path) -> None:
    assert "1001 is now secretary." in ok(invoke(imported, "members", "set-role", "1001", "书记"))
    assert query(db_file, "SELECT role FROM member WHERE roster_id = '1001'") == [("secretary",)]
    [row] = audit(db_file, "member.role")
    assert (json.loads(row["before"]), json.loads(row["after"])) == (
        {"role": "member"},
        {"role": "secretary"},
    )
    assert invoke(imported, "members", "set-role", "1001", "boss").exit_code == 1


def test_leave_and_undo(imported: dict[str, str], db_file: Path, sqlite_url: str) -> None:
    bind(sqlite_url, "1003", "wechat")
    ok(invoke(imported, "members", "invite", "--member", "1003", "--out", "c.xlsx"))

    output = ok(invoke(imported, "members", "leave", "1003", "--on", "2026-11-30"))

    assert "1003 marked as left." in output
    assert query(db_file, "SELECT left_on, role FROM member WHERE roster_id = '1003'") == [
        ("2026-11-30", "member")
    ]
    assert channels(db_file, "1003") == []
    assert query(db_file, "SELECT code_hash FROM invitation") == [("void",)]
    listed = json.loads(invoke(imported, "members", "list", "--json").stdout)
    assert {row["member_id"]: row["left_on"] for row in listed}["1003"] == "2026-11-30"
    assert "2026-11-30" in ok(invoke(imported, "members", "list"))
    # Nor can the console bind them (`qiyi chat --as`), nor a role be given while they are away.
    assert invoke(imported, "chat", "--as", "1003").exit_code == 1
    assert invoke(imported, "members", "set-role", "1003", "secretary").exit_code == 1

    assert "1003 is a member again." in ok(invoke(imported, "members", "leave", "1003", "--undo"))
    assert query(db_file, "SELECT left_on FROM member WHERE roster_id = '1003'") == [(None,)]
    assert [row["action"] for row in audit(db_file, "member.leave")] == ["member.leave"]
    assert len(audit(db_file, "member.leave_undo")) == 1


# --- import ---------------------------------------------------------------------------------


def test_import_lists_the_absent_members_and_marks_them_left_when_asked(
    imported: dict[str, str], db_file: Path, sqlite_url: str
) -> None:
    bind(sqlite_url, "1003", "wechat")
    without = write_csv("new.csv", [HEADER, ROSTER[0], ROSTER[1], ROSTER[3]])

    listed = ok(invoke(imported, "members", "import", str(without)))
    assert "Not in the file (1): 1003 王芳" in listed
    assert query(db_file, "SELECT left_on, role FROM member WHERE roster_id = '1003'") == [
        (None, "secretary")
    ]

    marked = ok(invoke(imported, "members", "import", str(without), "--mark-left"))
    assert "Marked left, not in the file (1): 1003 王芳" in marked
    [(left_on, role)] = query(db_file, "SELECT left_on, role FROM member WHERE roster_id = '1003'")
    assert left_on and role == "member"
    assert channels(db_file, "1003") == []
    [row] = audit(db_file, "member.leave")
    assert row["door"] == "cli" and row["object_id"] == "1003"


def test_import_reads_the_phone_column_and_keeps_only_the_last_four_digits(
    env: dict[str, str], db_file: Path
) -> None:
    lines = [
        "工号,姓名,支部,角色,手机",
        "1001,张三,第一党支部,党员,138-0013-5678",
        "1002,李四,第一党支部,党员,",
    ]
    ok(invoke(env, "members", "import", str(write_csv("phones.csv", lines))))

    assert query(db_file, "SELECT roster_id, phone_tail FROM member ORDER BY roster_id") == [
        ("1001", "5678"),
        ("1002", ""),
    ]
    assert query(db_file, "SELECT count(*) FROM member WHERE phone_tail LIKE '%0013%'") == [(0,)]
    bad = write_csv("bad.csv", ["工号,姓名,支部,角色,手机", "1001,张三,第一党支部,党员,12"])
    result = invoke(env, "members", "import", str(bad))
    assert result.exit_code == 1
    assert "line 2: phone has fewer than 4 digits" in " ".join(result.output.split())


def test_import_changes_are_audited(imported: dict[str, str], db_file: Path) -> None:
    assert [row["object_id"] for row in audit(db_file, "member.add")] == [
        "1001",
        "1002",
        "1003",
        "2001",
    ]
    changed = write_csv("changed.csv", [HEADER, "1001,张三,第二党支部,admin", *ROSTER[1:]])
    ok(invoke(imported, "members", "import", str(changed)))
    [row] = audit(db_file, "member.import")
    assert row["object_id"] == "1001" and row["actor"] == cli_label()
    assert json.loads(row["before"]) == {"branch": "第一党支部", "role": "member"}
    assert json.loads(row["after"]) == {"branch": "第二党支部", "role": "admin"}
