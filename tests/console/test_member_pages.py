"""成员: the roster in the console. A secretary sees and changes only their own branch (by
URL tampering too); unbinding, roles, branches and leaving go through the same operations
as the chat and the CLI, with their audit rows."""

from __future__ import annotations

import datetime as dt
import re

from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bot.appkeys import ENGINE
from bot.clock import FixedClock
from bot.messages import Sender
from data import members
from data.db import session_factory, transaction
from data.models import AuditEntry, Binding, Branch, ConsoleSession, Member
from tests.conftest import make_settings
from tests.console.conftest import AppClientFactory, Console, start_console
from tests.queries import issue_code


def engine_of(console: Console) -> AsyncEngine:
    return console.client.app[ENGINE]


async def member_row(console: Console, roster_id: str) -> Member:
    async with session_factory(engine_of(console))() as session:
        found = await members.member_by_roster_id(session, roster_id)
        assert found is not None
        return found


async def channels_of(console: Console, roster_id: str) -> list[str]:
    member = await member_row(console, roster_id)
    async with session_factory(engine_of(console))() as session:
        rows = await session.exec(select(Binding.channel).where(Binding.member_id == member.id))
        return sorted(rows)


async def branch_id(console: Console, name: str) -> int:
    async with session_factory(engine_of(console))() as session:
        found = (await session.exec(select(Branch.id).where(Branch.name == name))).one()
        assert found is not None
        return found


async def audit_actions(console: Console) -> list[tuple[str, str, str, str]]:
    async with session_factory(engine_of(console))() as session:
        rows = await session.exec(select(AuditEntry).order_by(col(AuditEntry.id)))
        return [(a.action, a.door, a.actor, a.object_id) for a in rows if a.door == "console"]


def roster_ids(html: str) -> set[str]:
    return set(re.findall(r'data-label="工号"><a href="/admin/members/\d+">(\w+)</a>', html))


async def test_a_secretary_lists_only_their_branch_whatever_the_address_says(
    console: Console,
) -> None:
    await console.sign_in("1003")
    other = await branch_id(console, "第二党支部")

    assert roster_ids(await (await console.client.get("/admin/members")).text()) == {
        "1001",
        "1002",
        "1003",
    }
    tampered = await console.client.get(f"/admin/members?branch={other}")
    assert roster_ids(await tampered.text()) == set()
    found = await console.client.get("/admin/members?q=张")
    assert roster_ids(await found.text()) == {"1001"}
    secretaries = await console.client.get("/admin/members?role=secretary")
    assert roster_ids(await secretaries.text()) == {"1003"}


async def test_an_admin_lists_everyone_and_filters(console: Console) -> None:
    await console.sign_in("9001")
    everyone = roster_ids(await (await console.client.get("/admin/members")).text())
    assert everyone == {"1001", "1002", "1003", "2001", "2002", "9001"}
    second = await branch_id(console, "第二党支部")
    in_second = await console.client.get(f"/admin/members?branch={second}")
    assert roster_ids(await in_second.text()) == {"2001", "2002"}
    assert roster_ids(await (await console.client.get("/admin/members?unbound=1")).text()) == set()
    by_id = await console.client.get("/admin/members?q=200")
    assert roster_ids(await by_id.text()) == {"2001", "2002"}
    # LIKE's wildcards typed in the search are searched for, not obeyed.
    assert roster_ids(await (await console.client.get("/admin/members?q=%25")).text()) == set()


async def test_another_branchs_member_is_a_404_to_read_and_to_change(console: Console) -> None:
    csrf = await console.sign_in("1003")
    stranger = await member_row(console, "2001")

    refused = await console.client.get(f"/admin/members/{stranger.id}")
    assert refused.status == 404 and "找不到要看的内容" in await refused.text()
    assert "赵强" not in await refused.text()
    for action, form in (
        ("unbind", {"channel": "all"}),
        ("leave", {"on": "2026-11-25"}),
    ):
        response = await console.client.post(
            f"/admin/members/{stranger.id}/{action}", data={"csrf": csrf, **form}
        )
        assert response.status == 404, action
    asked = await console.client.get(f"/admin/members/{stranger.id}/unbind?channel=test")
    assert asked.status == 404 and "赵强" not in await asked.text()
    assert await channels_of(console, "2001") == ["test"]
    assert (await member_row(console, "2001")).left_on is None
    missing = await console.client.get("/admin/members/999999")
    assert missing.status == 404 and await missing.text() == await refused.text()


async def test_a_secretary_unbinds_a_member_who_then_binds_a_new_account(
    console: Console,
) -> None:
    csrf = await console.sign_in("1003")
    member = await member_row(console, "1001")
    page = await (await console.client.get(f"/admin/members/{member.id}")).text()
    assert "张三" in page and f'href="/admin/members/{member.id}/unbind?channel=test"' in page
    confirm = await console.client.get(f"/admin/members/{member.id}/unbind?channel=test")
    assert "确认解绑" in await confirm.text()
    assert await channels_of(console, "1001") == ["test"]  # asking changes nothing

    done = await console.client.post(
        f"/admin/members/{member.id}/unbind", data={"csrf": csrf, "channel": "test"}
    )
    assert done.status == 200 and "已保存" in await done.text()
    assert await channels_of(console, "1001") == []
    assert ("member.unbind", "console", "王芳（1003）", "1001") in await audit_actions(console)
    # The member binds a new WeChat account with a code from the office.
    code = await issue_code(console.chat.conversation, "1001")
    new_account = Sender("wechat", "oNewPhone1001")
    reply = await console.chat.conversation.respond(
        _text(console, new_account, f"绑定 1001 {code}")
    )
    assert "绑定成功" in reply
    assert await channels_of(console, "1001") == ["wechat"]


def _text(console: Console, sender: Sender, text: str):  # type: ignore[no-untyped-def]
    import uuid

    from bot.messages import Inbound, InboundKind

    return Inbound(sender, uuid.uuid4().hex, InboundKind.TEXT, console.clock.now(), text)


async def test_only_an_admin_changes_roles_and_branches(console: Console) -> None:
    csrf = await console.sign_in("1003")
    member = await member_row(console, "1001")
    second = await branch_id(console, "第二党支部")
    for action, form in (("role", {"role": "secretary"}), ("branch", {"branch": str(second)})):
        refused = await console.client.post(
            f"/admin/members/{member.id}/{action}", data={"csrf": csrf, **form}
        )
        assert refused.status == 403, action
    assert (await member_row(console, "1001")).role == "member"

    admin = Console(TestClient(console.client.server), console.chat, console.clock)
    await admin.client.start_server()
    try:
        admin_csrf = await admin.sign_in("9001")
        await admin.client.post(
            f"/admin/members/{member.id}/role", data={"csrf": admin_csrf, "role": "secretary"}
        )
        await admin.client.post(
            f"/admin/members/{member.id}/branch", data={"csrf": admin_csrf, "branch": str(second)}
        )
        bad = await admin.client.post(
            f"/admin/members/{member.id}/role", data={"csrf": admin_csrf, "role": "king"}
        )
        assert bad.status == 400
    finally:
        await admin.client.session.close()
    moved = await member_row(console, "1001")
    assert moved.role == "secretary" and moved.branch_id == second
    actions = await audit_actions(console)
    assert ("member.role", "console", "刘洋（9001）", "1001") in actions
    assert ("member.branch", "console", "刘洋（9001）", "1001") in actions
    # Moved away: the secretary of the first branch no longer sees the member.
    assert (await console.client.get(f"/admin/members/{member.id}")).status == 404


async def test_lowering_a_role_in_the_console_ends_that_persons_sessions(
    console: Console,
) -> None:
    await console.sign_in("1003")
    admin = Console(TestClient(console.client.server), console.chat, console.clock)
    await admin.client.start_server()
    try:
        admin_csrf = await admin.sign_in("9001")
        secretary = await member_row(console, "1003")
        await admin.client.post(
            f"/admin/members/{secretary.id}/role", data={"csrf": admin_csrf, "role": "member"}
        )
    finally:
        await admin.client.session.close()
    async with session_factory(engine_of(console))() as session:
        ended = (
            await session.exec(
                select(ConsoleSession.ended_by).where(ConsoleSession.member_id == secretary.id)
            )
        ).all()
    assert ended == ["role"]  # ended by the operation itself, before any page is loaded
    assert (await console.client.get("/admin/", allow_redirects=False)).status == 303


async def test_marking_left_and_undoing_it(console: Console) -> None:
    csrf = await console.sign_in("1003")
    member = await member_row(console, "1002")

    await console.client.post(
        f"/admin/members/{member.id}/leave", data={"csrf": csrf, "on": "2026-11-20"}
    )
    left = await member_row(console, "1002")
    assert str(left.left_on) == "2026-11-20" and await channels_of(console, "1002") == []
    listed = await console.client.get("/admin/members?left=1")
    assert roster_ids(await listed.text()) == {"1002"}
    assert "1002" not in roster_ids(await (await console.client.get("/admin/members")).text())
    bad = await console.client.post(
        f"/admin/members/{member.id}/leave", data={"csrf": csrf, "on": "20.11.2026"}
    )
    assert bad.status == 400

    await console.client.post(f"/admin/members/{member.id}/leave", data={"csrf": csrf, "undo": "1"})
    assert (await member_row(console, "1002")).left_on is None
    actions = [a[0] for a in await audit_actions(console)]
    assert actions.count("member.leave") == 1 and actions.count("member.leave_undo") == 1


async def test_changes_without_the_csrf_token_change_nothing(console: Console) -> None:
    await console.sign_in("1003")
    member = await member_row(console, "1001")
    refused = await console.client.post(
        f"/admin/members/{member.id}/unbind", data={"channel": "all"}
    )
    assert refused.status == 403
    assert await channels_of(console, "1001") == ["test"]


async def test_the_member_page_shows_the_rungs_a_push_reaches_them_by(
    aiohttp_client: AppClientFactory, database_url: str, clock: FixedClock, engine: AsyncEngine
) -> None:
    settings = make_settings(
        database_url,
        wechat_appid="wx-appid",
        wechat_secret="wx-secret",
        wecom_corp_id="ww-corp",
        wecom_agent_id=1000002,
        wecom_secret="app-secret",
        wecom_token="wecom-token",
        wecom_aes_key="a" * 43,
    )
    console = await start_console(aiohttp_client, settings, clock)
    await console.sign_in("1003")
    member = await member_row(console, "1001")
    async with transaction(session_factory(engine_of(console))) as session:
        now = clock.now()
        wechat = await members.bind(session, Sender("wechat", "openid-1001"), member, now)
        await members.bind(session, Sender("wecom", "zhangsan"), member, now)
        wechat.window_until, wechat.window_budget = now + dt.timedelta(hours=48), 5
        session.add(wechat)

    page = await (await console.client.get(f"/admin/members/{member.id}")).text()

    assert '推送途径（按顺序）：<span class="rungs">微信窗口、企业微信、留言箱</span>' in page
    async with transaction(session_factory(engine_of(console))) as session:
        wechat.window_used = 5  # the window's budget spent
        session.add(wechat)
    page = await (await console.client.get(f"/admin/members/{member.id}")).text()
    assert '<span class="rungs">企业微信、留言箱</span>' in page
