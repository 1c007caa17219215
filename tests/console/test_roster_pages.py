"""导入名册 and 导出名册 in the console: an upload is read into a draft and previewed (every
problem with its line, or the change) without writing; only 确认导入 writes, audited, once,
by the admin who uploaded it, within 30 minutes. Secretaries cannot import (404) and export
only their own branch. The export reads back as the same roster."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from aiohttp import ClientResponse, FormData
from openpyxl import load_workbook
from sqlalchemy import func
from sqlmodel import col, select

from bot import roster
from bot.appkeys import ENGINE
from data import retention, roster_drafts
from data.db import Sessions, session_factory, transaction
from data.models import AuditEntry, Member, RosterDraft
from tests.conftest import ROSTER
from tests.console.conftest import Console

HEADER = "工号,姓名,支部,角色"
# The seeded roster as a file, as it stands.
SAME = [HEADER, *(f"{r.member_id},{r.name},{r.branch},{r.role.value}" for r in ROSTER)]
DRAFT_URL = re.compile(r"/admin/roster/drafts/([A-Za-z0-9_-]{32})$")


def csv_bytes(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def sessions(console: Console) -> Sessions:
    return session_factory(console.client.app[ENGINE])


async def count(console: Console, model: type) -> int:
    async with sessions(console)() as session:
        return (await session.exec(select(func.count()).select_from(model))).one()


async def audit_rows(console: Console, action: str) -> list[AuditEntry]:
    async with sessions(console)() as session:
        statement = select(AuditEntry).where(AuditEntry.action == action)
        return list(await session.exec(statement.order_by(col(AuditEntry.id))))


async def member(console: Console, roster_id: str) -> Member | None:
    async with sessions(console)() as session:
        statement = select(Member).where(Member.roster_id == roster_id)
        return (await session.exec(statement)).first()


async def snapshot(console: Console) -> list[tuple[object, ...]]:
    """Every member as stored, and how many audit rows there are."""
    async with sessions(console)() as session:
        rows = await session.exec(select(Member).order_by(col(Member.id)))
        people = [(m.roster_id, m.name, m.branch_id, m.role, m.left_on) for m in rows]
    return [*people, ("audit", await count(console, AuditEntry))]


async def upload(
    console: Console, csrf: str | None, data: bytes, name: str = "名册.csv"
) -> ClientResponse:
    form = FormData()
    if csrf is not None:
        form.add_field("csrf", csrf)
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    return await console.client.post("/admin/roster", data=form, allow_redirects=False)


async def draft_of(console: Console, csrf: str, data: bytes, name: str = "名册.csv") -> str:
    response = await upload(console, csrf, data, name)
    assert response.status == 303, await response.text()
    found = DRAFT_URL.search(response.headers["Location"])
    assert found, response.headers["Location"]
    return found.group(1)


async def confirm(
    console: Console, csrf: str | None, draft: str, leave: tuple[int, ...] = ()
) -> ClientResponse:
    form: list[tuple[str, str]] = [("csrf", csrf)] if csrf is not None else []
    form += [("leave", str(member_id)) for member_id in leave]
    return await console.client.post(
        f"/admin/roster/drafts/{draft}", data=form, allow_redirects=False
    )


async def test_every_problem_is_listed_with_its_line_and_nothing_is_written(
    console: Console,
) -> None:
    csrf = await console.sign_in("9001")
    before = await snapshot(console)
    lines = [
        HEADER,
        "3001,新人,第一党支部,党员",
        "3002,,第一党支部,党员",
        "3003,另一人,第一党支部,主任",
        "3001,重复,第二党支部,党员",
    ]

    draft = await draft_of(console, csrf, csv_bytes(lines))
    page = await console.client.get(f"/admin/roster/drafts/{draft}")

    html = await page.text()
    assert page.status == 200
    assert "文件中有 3 个问题" in html
    assert '第 3 行</td><td data-label="问题">姓名为空' in html
    assert '第 4 行</td><td data-label="问题">角色“主任”无法识别' in html
    assert '第 5 行</td><td data-label="问题">工号 3001 与第 2 行重复' in html
    assert "确认导入" not in html
    assert await snapshot(console) == before
    # Confirming a file with problems is refused too.
    assert (await confirm(console, csrf, draft)).status == 409
    assert await snapshot(console) == before


async def test_the_preview_shows_the_change_and_writes_nothing(console: Console) -> None:
    csrf = await console.sign_in("9001")
    lines = [
        HEADER,
        "1001,张三,第一党支部,党员",  # unchanged
        "1002,李四,第三党支部,党员",  # moved to a branch that does not exist yet
        "1003,王芳,第一党支部,书记",  # unchanged
        "9001,刘洋,机关党支部,管理员",  # unchanged
        "3001,孙新,第二党支部,党员",  # added
    ]
    before = await snapshot(console)

    draft = await draft_of(console, csrf, csv_bytes(lines))
    html = await (await console.client.get(f"/admin/roster/drafts/{draft}")).text()

    tiles = dict(re.findall(r'<span class="label">(\S+)</span><span class="value">(\d+)', html))
    assert tiles == {"新增": "1", "更新": "1", "不变": "3", "不在文件中": "2"}
    assert "将新建支部：第三党支部" in html
    assert "3001 孙新" in html
    assert "支部：第一党支部 → 第三党支部" in html
    absent = re.findall(r"<li><span>(\d+) \S+</span><label class=\"check\">", html)
    assert absent == ["2001", "2002"]
    assert html.count("标记为离开") == 2
    assert await snapshot(console) == before
    assert await member(console, "3001") is None


async def test_confirm_writes_audited_and_marks_left_only_the_ticked(console: Console) -> None:
    csrf = await console.sign_in("9001")
    # 1001, 1003 and 9001 as they are; 1002 moved; 3001 new; 2001 and 2002 left out.
    lines = [
        HEADER,
        SAME[1],
        SAME[3],
        SAME[6],
        "3001,孙新,第二党支部,党员",
        "1002,李四,第二党支部,党员",
    ]
    draft = await draft_of(console, csrf, csv_bytes(lines))
    absent = [await member(console, "2001"), await member(console, "2002")]
    assert all(found is not None and found.id for found in absent)
    ticked = absent[0]
    assert ticked is not None and ticked.id is not None

    response = await confirm(console, csrf, draft, leave=(ticked.id,))

    html = await response.text()
    assert response.status == 200, html
    tiles = dict(re.findall(r'<span class="label">(\S+)</span><span class="value">(\d+)', html))
    assert tiles == {"新增": "1", "更新": "1", "标记为离开": "1"}
    added = await member(console, "3001")
    assert added is not None and added.name == "孙新"
    left = await member(console, "2001")
    kept = await member(console, "2002")
    assert left is not None and left.left_on == console.clock.now().date()
    assert kept is not None and kept.left_on is None
    [add] = await audit_rows(console, "member.add")
    [move] = await audit_rows(console, "member.import")
    [leave] = await audit_rows(console, "member.leave")
    assert (add.object_id, move.object_id, leave.object_id) == ("3001", "1002", "2001")
    assert {row.door for row in (add, move, leave)} == {"console"}
    assert add.actor == "刘洋（9001）" and add.origin == "127.0.0.1"
    assert '"第二党支部"' in move.after
    # The draft is used up: confirming it again is refused and writes nothing.
    before = await snapshot(console)
    assert (await confirm(console, csrf, draft)).status == 404
    assert await snapshot(console) == before
    assert await count(console, RosterDraft) == 0


async def test_a_secretary_cannot_import(console: Console) -> None:
    csrf = await console.sign_in("1003")
    assert (await console.client.get("/admin/roster")).status == 404
    response = await upload(console, csrf, csv_bytes(SAME))
    assert response.status == 404
    assert await count(console, RosterDraft) == 0
    admin = await member(console, "9001")
    assert admin is not None and admin.id is not None
    async with transaction(sessions(console)) as session:
        draft = await roster_drafts.create(
            session, admin.id, "a.csv", '{"rows": []}', console.clock.now()
        )
    assert (await console.client.get(f"/admin/roster/drafts/{draft}")).status == 404
    before = await snapshot(console)
    assert (await confirm(console, csrf, draft)).status == 404
    assert await snapshot(console) == before
    assert "导入名册" not in await (await console.client.get("/admin/")).text()


async def test_another_admins_draft_is_not_found(console: Console) -> None:
    csrf = await console.sign_in("9001")
    other = await member(console, "2002")
    assert other is not None and other.id is not None
    async with transaction(sessions(console)) as session:
        draft = await roster_drafts.create(
            session,
            other.id,
            "a.csv",
            '{"rows": [], "problems": [], "problem_count": 0}',
            console.clock.now(),
        )

    assert (await console.client.get(f"/admin/roster/drafts/{draft}")).status == 404
    assert (await confirm(console, csrf, draft)).status == 404
    assert await count(console, RosterDraft) == 1


async def test_posts_without_the_csrf_token_are_refused(console: Console) -> None:
    csrf = await console.sign_in("9001")
    lines = [*SAME, "3001,孙新,第二党支部,党员"]

    assert (await upload(console, None, csv_bytes(lines))).status == 403
    assert (await upload(console, "wrong", csv_bytes(lines))).status == 403
    assert await count(console, RosterDraft) == 0

    draft = await draft_of(console, csrf, csv_bytes(lines))
    before = await snapshot(console)
    assert (await confirm(console, None, draft)).status == 403
    assert await snapshot(console) == before
    assert await count(console, RosterDraft) == 1


async def test_an_expired_draft_is_refused(console: Console) -> None:
    csrf = await console.sign_in("9001")
    draft = await draft_of(console, csrf, csv_bytes([*SAME, "3001,孙新,第二党支部,党员"]))
    console.clock.advance(minutes=31)

    page = await console.client.get(f"/admin/roster/drafts/{draft}")
    assert page.status == 410
    assert "已过期" in await page.text()
    before = await snapshot(console)
    assert (await confirm(console, csrf, draft)).status == 410
    assert await snapshot(console) == before
    assert await member(console, "3001") is None


async def test_an_oversize_upload_is_refused_unread(console: Console) -> None:
    csrf = await console.sign_in("9001")
    # One byte too many: the form's length passes the first look, the file is cut off.
    big = csv_bytes(SAME) + b"x" * (2 * 1024 * 1024 + 1 - len(csv_bytes(SAME)))

    response = await upload(console, csrf, big)

    assert response.status == 413
    assert "文件太大" in await response.text()
    assert await count(console, RosterDraft) == 0
    # As a browser sends it, with its length declared: refused before even the token is read.
    body = (
        b'--b\r\nContent-Disposition: form-data; name="csrf"\r\n\r\nwrong\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'
        + big * 2
        + b"\r\n--b--\r\n"
    )
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    declared = await console.client.post("/admin/roster", data=body, headers=headers)
    assert declared.status == 413
    assert "文件太大" in await declared.text()


async def test_only_csv_and_xlsx_are_accepted(console: Console) -> None:
    csrf = await console.sign_in("9001")
    response = await upload(console, csrf, csv_bytes(SAME), name="roster.txt")
    assert response.status == 400
    assert "只接受 .csv 或 .xlsx" in await response.text()
    assert await count(console, RosterDraft) == 0


def zip_bomb() -> bytes:
    """A small .xlsx-named zip whose member unpacks to 60 MB of zeros."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (60 * 1024 * 1024))
    return out.getvalue()


async def test_a_zip_bomb_is_refused_without_opening_it(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("openpyxl must not open a zip bomb")

    monkeypatch.setattr(roster, "load_workbook", never)
    csrf = await console.sign_in("9001")
    bomb = zip_bomb()
    assert len(bomb) < 200_000

    draft = await draft_of(console, csrf, bomb, name="bomb.xlsx")
    html = await (await console.client.get(f"/admin/roster/drafts/{draft}")).text()

    assert "表格解压后超过 50 MB，未打开" in html
    assert "确认导入" not in html


async def test_a_form_post_is_bounded_by_the_consoles_limit(console: Console) -> None:
    csrf = await console.sign_in("9001")
    target = await member(console, "1001")
    assert target is not None
    form = {"csrf": csrf, "on": "2026-01-01", "padding": "x" * (100 * 1024)}

    response = await console.client.post(f"/admin/members/{target.id}/leave", data=form)

    assert response.status == 413
    still = await member(console, "1001")
    assert still is not None and still.left_on is None


def workbook_rows(body: bytes) -> list[tuple[object, ...]]:
    sheet = load_workbook(io.BytesIO(body)).worksheets[0]
    return [tuple(row) for row in sheet.iter_rows(values_only=True)]


async def test_the_export_reads_back_as_the_same_roster(console: Console) -> None:
    csrf = await console.sign_in("9001")
    response = await console.client.get("/admin/roster/export")
    body = await response.read()

    assert response.status == 200
    assert "roster-2026-" in response.headers["Content-Disposition"]
    rows = workbook_rows(body)
    assert rows[0] == ("工号", "姓名", "支部", "角色", "绑定渠道", "离开日期")
    assert sorted(row[0] for row in rows[1:]) == sorted(r.member_id for r in ROSTER)
    assert ("1003", "王芳", "第一党支部", "书记", "test", None) in rows  # the tests' channel
    [exported] = await audit_rows(console, "roster.export")
    assert exported.door == "console" and exported.object_id == "all"

    before = await snapshot(console)
    draft = await draft_of(console, csrf, body, name="名册.xlsx")
    html = await (await console.client.get(f"/admin/roster/drafts/{draft}")).text()
    tiles = dict(re.findall(r'<span class="label">(\S+)</span><span class="value">(\d+)', html))
    assert tiles == {"新增": "0", "更新": "0", "不变": str(len(ROSTER)), "不在文件中": "0"}
    assert (await confirm(console, csrf, draft)).status == 200
    assert await snapshot(console) == before


async def test_a_secretary_exports_only_their_branch(console: Console) -> None:
    await console.sign_in("1003")
    response = await console.client.get("/admin/roster/export")

    rows = workbook_rows(await response.read())
    assert sorted(row[0] for row in rows[1:]) == ["1001", "1002", "1003"]
    assert {row[2] for row in rows[1:]} == {"第一党支部"}
    [exported] = await audit_rows(console, "roster.export")
    assert exported.branch_id is not None and exported.object_id == str(exported.branch_id)


async def test_old_drafts_are_purged(console: Console) -> None:
    admin = await member(console, "9001")
    assert admin is not None and admin.id is not None
    async with transaction(sessions(console)) as session:
        await roster_drafts.create(session, admin.id, "old.csv", "{}", console.clock.now())
    console.clock.advance(minutes=40)
    async with transaction(sessions(console)) as session:
        await roster_drafts.create(session, admin.id, "new.csv", "{}", console.clock.now())

    async with transaction(sessions(console)) as session:
        gone = await retention.forget_roster_drafts(
            session, console.clock.now() - roster_drafts.LIFETIME, 100
        )

    assert gone == 1
    async with sessions(console)() as session:
        names = list(await session.exec(select(RosterDraft.file_name)))
    assert names == ["new.csv"]


async def test_an_exported_name_that_looks_like_a_formula_stays_text(console: Console) -> None:
    csrf = await console.sign_in("9001")
    lines = [*SAME, "3001,=1+1,第一党支部,党员"]
    draft = await draft_of(console, csrf, csv_bytes(lines))
    assert (await confirm(console, csrf, draft)).status == 200

    body = await (await console.client.get("/admin/roster/export")).read()

    sheet = load_workbook(io.BytesIO(body)).worksheets[0]
    [cell] = [row[1] for row in sheet.iter_rows() if row[0].value == "3001"]
    assert cell.value == "=1+1" and cell.data_type == "s" and cell.quotePrefix
