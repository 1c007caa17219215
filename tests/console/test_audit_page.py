"""审计: a secretary reads only their branch's entries (whatever the address says), an admin
all; filters and paging; the XLSX export has the same scope and keeps text as text."""

from __future__ import annotations

import io

from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.appkeys import ENGINE
from console import audit_pages
from data import audit, members
from data.db import session_factory, transaction
from tests.console.conftest import Console

CLI = audit.Actor(audit.Door.CLI, "=cmd|' /C calc'!A0", "server")


async def _log(engine: AsyncEngine, console: Console, branch: str | None, roster_id: str) -> None:
    async with transaction(session_factory(engine)) as session:
        branch_id = None
        if branch is not None:
            branch_id = (await members.branch_ids_by_name(session, {branch}))[branch]
        await audit.record(
            session,
            CLI,
            "member.role",
            object_type="member",
            object_id=roster_id,
            branch_id=branch_id,
            at=console.clock.now(),
            before={"role": "member"},
            after={"role": "secretary"},
        )


async def _seed_log(console: Console) -> AsyncEngine:
    engine = console.client.app[ENGINE]
    await _log(engine, console, "第一党支部", "1002")
    await _log(engine, console, "第二党支部", "2001")
    await _log(engine, console, None, "org")
    return engine


async def test_a_secretary_sees_only_their_branch(console: Console) -> None:
    await _seed_log(console)
    await console.sign_in("1003")

    text = await (await console.client.get("/admin/audit")).text()
    assert "成员 1002" in text
    assert "成员 2001" not in text and "成员 org" not in text
    assert "角色：党员 → 支部书记" in text
    # Tampering with the address changes nothing of the scope.
    for query in ("?branch=2", "?branch_id=2", "?before=999999999", "?action=x&door=y"):
        tampered = await (await console.client.get("/admin/audit" + query)).text()
        assert "成员 2001" not in tampered and "成员 org" not in tampered, query

    export = await console.client.get("/admin/audit.xlsx?door=cli")
    assert export.status == 200
    assert "attachment" in export.headers["Content-Disposition"]
    sheet = load_workbook(io.BytesIO(await export.read())).active
    assert sheet is not None
    objects = [row[6] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert objects == ["成员 1002"]
    assert sheet["C2"].value == CLI.label and sheet["C2"].data_type == "s"  # not a formula


async def test_an_admin_sees_everything_and_filters(console: Console) -> None:
    engine = await _seed_log(console)
    await console.sign_in("9001")

    text = await (await console.client.get("/admin/audit")).text()
    for roster_id in ("1002", "2001", "org"):
        assert f"成员 {roster_id}" in text
    # Signing in is itself in the log, and can be picked out.
    only = await (await console.client.get("/admin/audit?action=console.sign_in")).text()
    assert "登录后台" in only and "成员 2001" not in only
    cli = await (await console.client.get("/admin/audit?door=cli")).text()
    assert "成员 2001" in cli and "登录后台</td>" not in cli
    async with session_factory(engine)() as session:
        assert len(await audit.entries(session)) == 4


async def test_the_log_is_paged_by_id(console: Console) -> None:
    engine = console.client.app[ENGINE]
    for number in range(audit_pages.PAGE_ROWS + 5):
        await _log(engine, console, "第一党支部", f"p{number:03d}")
    await console.sign_in("1003")

    first = await (await console.client.get("/admin/audit?door=cli")).text()
    assert "成员 p054" in first and "成员 p004" not in first
    link = first.split("/admin/audit?action=&amp;door=cli&amp;before=")[1].split('"')[0]
    second = await (await console.client.get(f"/admin/audit?door=cli&before={link}")).text()
    assert "成员 p004" in second and "成员 p000" in second and "成员 p054" not in second
    assert "更早的记录" not in second


async def test_a_plain_member_has_no_way_in(console: Console) -> None:
    response = await console.client.get("/admin/audit", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/admin/login"
    export = await console.client.get("/admin/audit.xlsx", allow_redirects=False)
    assert export.status == 303
