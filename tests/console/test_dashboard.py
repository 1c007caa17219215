"""概览: the ranking chart (admins) and the push configuration alerts."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from aiohttp.test_utils import TestClient
from matplotlib import image
from sqlmodel import select

from bot.appkeys import CONVERSATION
from bot.clock import today
from console import dashboard
from data.db import transaction
from data.models import DeliveryAttempt, Member, OutboxItem, PushKind
from data.outbox import Push, enqueue
from tests.console.conftest import Console


async def admin_console(console: Console) -> Console:
    """A second browser on the same server, signed in as the admin 9001."""
    admin = Console(TestClient(console.client.server), console.chat, console.clock)
    await admin.client.start_server()
    await admin.sign_in("9001")
    return admin


async def test_the_admin_sees_the_ranking_chart_of_every_branch(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    await console.chat.say("1001", "学习 120")
    await console.chat.say("2001", "学习 30")
    drawn: list[tuple[str, list[tuple[int, str, float]]]] = []
    draw = dashboard.ranking_png

    def spy(title: str, label: str, rows: list[tuple[int, str, float]], width: int) -> bytes:
        drawn.append((title, rows))
        return draw(title, label, rows, width)

    monkeypatch.setattr(dashboard, "ranking_png", spy)
    admin = await admin_console(console)
    try:
        page = await (await admin.client.get("/admin/")).text()
        assert 'src="/admin/ranking.png?at=' in page
        first = await admin.client.get("/admin/ranking.png")
        again = await admin.client.get("/admin/ranking.png")
    finally:
        await admin.client.session.close()

    assert first.status == 200 and first.content_type == "image/png"
    png = await first.read()
    assert await again.read() == png and len(drawn) == 1  # drawn once per standings
    height, width, _ = image.imread(io.BytesIO(png), format="png").shape
    assert width == dashboard.CHART_WIDTH_PX and height > 400
    standings = await console.client.app[CONVERSATION].standings.month_so_far()
    assert standings is not None
    title, rows = drawn[0]
    assert title.startswith("2026年11月 支部评分（截至25日")
    expected = [(b.rank, b.branch, b.score) for b in standings.branches if b.rank is not None]
    assert rows == expected and len(rows) == 3


async def test_a_secretary_gets_no_chart_of_other_branches(console: Console) -> None:
    await console.sign_in("1003")
    page = await (await console.client.get("/admin/")).text()
    assert "ranking.png" not in page
    assert "第一党支部在 3 个支部中排第" in page
    assert (await console.client.get("/admin/ranking.png")).status == 404


async def fail_a_push(console: Console, roster_id: str, errcode: int, at: dt.datetime) -> None:
    """An outbox item of `at`'s day whose delivery the platform refused with `errcode`."""
    sessions = console.client.app[CONVERSATION].sessions
    async with transaction(sessions) as session:
        member = (await session.exec(select(Member).where(Member.roster_id == roster_id))).one()
        assert member.id is not None
        push = Push(member.id, PushKind.NEWS, f"test-{errcode}", at.date(), "新闻", "新闻", at)
        await enqueue(session, [push], at)
        item = (await session.exec(select(OutboxItem).where(OutboxItem.key == push.key))).one()
        attempt = DeliveryAttempt(
            outbox_id=item.id, at=at, method="custom", ok=False, errcode=errcode, detail="refused"
        )
        session.add(attempt)


async def test_the_admin_is_shown_todays_configuration_errors(console: Console) -> None:
    now = console.clock.now()
    await fail_a_push(console, "1001", 40164, now - dt.timedelta(minutes=30))
    await fail_a_push(console, "1002", 40164, now - dt.timedelta(minutes=5))
    await fail_a_push(console, "2001", 45047, now)  # the member's quota: not configuration
    await fail_a_push(console, "2002", 48001, now - dt.timedelta(days=1))  # yesterday's
    assert today(console.clock) == now.date()

    admin = await admin_console(console)
    try:
        page = await (await admin.client.get("/admin/")).text()
    finally:
        await admin.client.session.close()
    assert "推送配置有误" in page
    assert "错误码 40164：今天 2 次，最近一次 08:55" in page
    assert "服务器 IP 不在公众号白名单" in page
    assert "45047" not in page and "48001" not in page

    await console.sign_in("1003")  # a secretary cannot fix the account's configuration
    assert "推送配置有误" not in await (await console.client.get("/admin/")).text()
