"""Signing in to the console through the chat: codes, links, sessions, CSRF and headers."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bot.appkeys import CONVERSATION, ENGINE
from bot.clock import FixedClock
from data.db import session_factory, transaction
from data.models import AuditEntry, ConsoleSession, ConsoleSignIn, Member
from tests.conftest import make_settings
from tests.console.conftest import BROWSER, AppClientFactory, Console, start_console

LINK = re.compile(r"https://party\.example\.org(/admin/link/[A-Za-z0-9_\-]+)")


async def sessions_of(engine: AsyncEngine, roster_id: str) -> list[ConsoleSession]:
    async with session_factory(engine)() as session:
        statement = (
            select(ConsoleSession)
            .join(Member, col(Member.id) == col(ConsoleSession.member_id))
            .where(Member.roster_id == roster_id)
        )
        return list(await session.exec(statement))


def engine_of(console: Console) -> AsyncEngine:
    return console.client.app[ENGINE]


async def test_a_secretary_signs_in_with_the_code_sent_through_the_chat(console: Console) -> None:
    code = await console.show_code()
    # Until the code is sent, the page only waits (and shows the same code).
    again = await console.client.get("/admin/login")
    assert f"登录 {code}" in await again.text()
    assert (await console.client.get("/admin/", allow_redirects=False)).status == 303

    reply = await console.chat.say("1003", f"登录 {code}")

    assert "已确认登录管理后台：Chrome（Windows）" in reply and "127.0.0.1" in reply
    signed = await console.client.get("/admin/login", allow_redirects=False)
    assert signed.status == 303 and signed.headers["Location"] == "/admin/"
    cookie = signed.cookies["qiyi_console"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/admin/"
    page = await console.client.get("/admin/")
    assert page.status == 200 and "王芳" in await page.text()
    rows = await sessions_of(engine_of(console), "1003")
    assert len(rows) == 1 and rows[0].token_hash != cookie.value  # only its hash is kept
    async with session_factory(engine_of(console))() as session:
        audit = (await session.exec(select(AuditEntry))).all()
    assert [(a.action, a.door, a.object_id) for a in audit] == [
        ("console.sign_in", "console", "1003")
    ]


async def test_a_plain_member_cannot_sign_in(console: Console) -> None:
    code = await console.show_code()

    reply = await console.chat.say("1001", f"登录 {code}")

    assert "权限" in reply
    assert (await console.client.get("/admin/login", allow_redirects=False)).status == 200
    assert await sessions_of(engine_of(console), "1001") == []


async def test_an_expired_or_used_code_signs_nobody_in(console: Console) -> None:
    code = await console.show_code()
    console.clock.advance(minutes=6)
    assert "不正确或已过期" in await console.chat.say("1003", f"登录 {code}")

    await console.sign_in("1003")
    async with session_factory(engine_of(console))() as session:
        used = (await session.exec(select(ConsoleSignIn.code))).all()
    # The used code again, from another staff member: nobody else is signed in by it.
    assert "不正确或已过期" in await console.chat.say("9001", f"登录 {used[-1]}")
    assert await sessions_of(engine_of(console), "9001") == []


async def test_wrong_codes_are_throttled_per_account(console: Console) -> None:
    code = await console.show_code()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        assert "不正确或已过期" in await console.chat.say("1003", f"登录 {wrong}")

    assert "次数过多" in await console.chat.say("1003", f"登录 {code}")
    assert await sessions_of(engine_of(console), "1003") == []


async def test_bad_codes_get_the_usage_line(console: Console) -> None:
    for text in ("登录 12345", "登录 1234567", "登录 abcdef", "登录 ١٢٣٤٥٦"):
        reply = await console.chat.say("1003", text)
        assert "登录码是 6 位数字" in reply, text


async def test_a_one_time_link_from_the_chat(
    aiohttp_client: AppClientFactory, database_url: str, clock: FixedClock, engine: AsyncEngine
) -> None:
    settings = make_settings(database_url, public_url="https://party.example.org")
    console = await start_console(aiohttp_client, settings, clock)

    reply = await console.chat.say("9001", "登录")

    found = LINK.search(reply)
    assert found and "10 分钟内有效" in reply
    path = found.group(1)
    # Opening the link asks first (a preview must not spend it).
    opened = await console.client.get(path)
    assert opened.status == 200 and "确认登录" in await opened.text()
    assert await sessions_of(engine, "9001") == []
    confirmed = await console.client.post(path, allow_redirects=False)
    assert confirmed.status == 303
    cookie = confirmed.cookies["qiyi_console"]
    assert cookie["secure"]  # the public address is https (so the test's http jar drops it)
    signed_in = {"Cookie": f"qiyi_console={cookie.value}"}
    assert "刘洋" in await (await console.client.get("/admin/", headers=signed_in)).text()
    # Single use.
    assert (await console.client.post(path, allow_redirects=False)).status == 404
    # An expired one signs nobody in.
    other = LINK.search(await console.chat.say("1003", "登录"))
    assert other
    clock.advance(minutes=11)
    assert (await console.client.post(other.group(1), allow_redirects=False)).status == 404
    assert await sessions_of(engine, "1003") == []


async def test_no_link_without_a_public_address(console: Console) -> None:
    assert "QIYI_PUBLIC_URL" in await console.chat.say("1003", "登录")


async def test_a_post_without_the_csrf_token_changes_nothing(console: Console) -> None:
    csrf = await console.sign_in("1003")

    refused = await console.client.post("/admin/logout", data={"csrf": "wrong"})
    assert refused.status == 403
    missing = await console.client.post("/admin/logout")
    assert missing.status == 403
    assert (await console.client.get("/admin/")).status == 200  # still signed in
    foreign = await console.client.post(
        "/admin/logout", data={"csrf": csrf}, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status == 403
    assert (await console.client.get("/admin/")).status == 200

    out = await console.client.post("/admin/logout", data={"csrf": csrf}, allow_redirects=False)
    assert out.status == 303
    assert (await console.client.get("/admin/", allow_redirects=False)).status == 303
    (row,) = await sessions_of(engine_of(console), "1003")
    assert row.ended_by == "logout"


async def test_a_session_ends_when_the_role_is_lowered(console: Console) -> None:
    await console.sign_in("1003")
    async with transaction(session_factory(engine_of(console))) as session:
        await session.exec(
            update(Member).where(col(Member.roster_id) == "1003").values(role="member")  # type: ignore[call-overload]
        )

    assert (await console.client.get("/admin/", allow_redirects=False)).status == 303
    (row,) = await sessions_of(engine_of(console), "1003")
    assert row.ended_by == "role"


async def test_sessions_expire_when_idle_and_at_their_hard_end(console: Console) -> None:
    await console.sign_in("1003")
    console.clock.advance(hours=11)
    assert (await console.client.get("/admin/")).status == 200  # in use: kept alive
    console.clock.advance(hours=12, minutes=1)
    assert (await console.client.get("/admin/", allow_redirects=False)).status == 303

    await console.sign_in("1003")
    for _ in range(7):
        console.clock.advance(hours=11)
        await console.client.get("/admin/")
    console.clock.advance(days=7 - 77 / 24 + 0.01)
    assert (await console.client.get("/admin/", allow_redirects=False)).status == 303


async def test_my_sessions_list_and_end_only_my_own(console: Console) -> None:
    other_browser = TestClient(console.client.server)
    await other_browser.start_server()
    try:
        other = Console(other_browser, console.chat, console.clock)
        await other.sign_in("1003")
        admin = Console(TestClient(console.client.server), console.chat, console.clock)
        await admin.client.start_server()
        await admin.sign_in("9001")
        csrf = await console.sign_in("1003")

        listing = await console.client.get("/admin/sessions")
        text = await listing.text()
        assert text.count("Chrome（Windows）") == 2 and "当前" in text
        mine = await sessions_of(engine_of(console), "1003")
        (admins,) = await sessions_of(engine_of(console), "9001")
        other_id = min(row.id or 0 for row in mine)  # the other browser's: signed in first
        # Another person's session id: nothing ends.
        refused = await console.client.post(f"/admin/sessions/{admins.id}/end", data={"csrf": csrf})
        assert refused.status == 404
        assert (await admin.client.get("/admin/")).status == 200
        ended = await console.client.post(f"/admin/sessions/{other_id}/end", data={"csrf": csrf})
        assert ended.status == 200  # back on the listing
        assert (await other_browser.get("/admin/", allow_redirects=False)).status == 303
        await admin.client.session.close()
    finally:
        await other_browser.session.close()


async def test_every_page_carries_the_security_headers(console: Console) -> None:
    for path in ("/admin/login", "/admin/link/nothing", "/admin/"):
        response = await console.client.get(path, headers={"User-Agent": BROWSER})
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "same-origin"
        body = await response.text()
        assert "<script>" not in body and "style=" not in body, path


async def test_the_overview_shows_the_months_branch_scores_in_scope(console: Console) -> None:
    await console.chat.say("1001", "学习 120")
    await console.chat.say("2001", "学习 30")
    await console.sign_in("1003")

    secretary = await (await console.client.get("/admin/")).text()
    assert "本月支部评分" in secretary and "截至" in secretary
    assert "第一党支部在 3 个支部中排第 1 名" in secretary
    assert "<td>第二党支部</td>" not in secretary  # a secretary sees their own branch's line

    admin = Console(TestClient(console.client.server), console.chat, console.clock)
    await admin.client.start_server()
    try:
        await admin.sign_in("9001")
        everyone = await (await admin.client.get("/admin/")).text()
    finally:
        await admin.client.session.close()
    standings = await console.client.app[CONVERSATION].standings.month_so_far()
    assert standings is not None
    for branch in standings.branches:
        if branch.rank is not None:
            assert f"<td>{branch.branch}</td><td>{branch.score:.1f}</td>" in everyone
