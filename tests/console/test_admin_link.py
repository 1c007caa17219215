"""`qiyi admin link --as <工号>`: a sign-in link printed on the server, for staff only."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app

ROSTER = ["member_id,name,branch,role", "1001,张三,第一党支部,member", "9001,刘洋,机关党支部,admin"]


pytestmark = pytest.mark.usefixtures("isolated_cli")


@pytest.fixture(autouse=True)
def roster_file(isolated_cli: None) -> None:
    Path("roster.csv").write_text("\n".join(ROSTER) + "\n", encoding="utf-8")


def invoke(tmp_path: Path, *args: str, **env: str) -> tuple[int, str]:
    values = {"QIYI_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'qiyi.db'}", **env}
    result = CliRunner().invoke(app, list(args), env=values)
    return result.exit_code, result.output


def test_a_link_for_an_admin_with_the_public_address(tmp_path: Path) -> None:
    assert invoke(tmp_path, "members", "import", "roster.csv")[0] == 0

    code, output = invoke(
        tmp_path, "admin", "link", "--as", "9001", QIYI_PUBLIC_URL="https://party.example.org/"
    )

    assert code == 0, output
    assert re.search(r"https://party\.example\.org/admin/link/[A-Za-z0-9_\-]{40,}", output)
    assert "QIYI_PUBLIC_URL is not set" not in output
    with sqlite3.connect(tmp_path / "qiyi.db") as db:
        audit = list(
            db.execute(
                "SELECT action, door, object_id FROM auditentry WHERE action = 'console.link'"
            )
        )
        tokens = [row[0] for row in db.execute("SELECT token_hash FROM consolesignin")]
    assert audit == [("console.link", "cli", "9001")]
    token = output.split("/admin/link/")[1].split()[0]
    assert token not in tokens  # only its hash is kept


def test_without_a_public_address_it_says_so(tmp_path: Path) -> None:
    invoke(tmp_path, "members", "import", "roster.csv")
    code, output = invoke(tmp_path, "admin", "link", "--as", "9001")
    assert code == 0 and "http://127.0.0.1:8080/admin/link/" in output
    assert "QIYI_PUBLIC_URL is not set" in " ".join(output.split())


@pytest.mark.parametrize("roster_id", ["1001", "4242"])
def test_no_link_for_a_plain_member_or_a_stranger(tmp_path: Path, roster_id: str) -> None:
    invoke(tmp_path, "members", "import", "roster.csv")
    code, output = invoke(tmp_path, "admin", "link", "--as", roster_id)
    assert code == 1 and "/admin/link/" not in output
