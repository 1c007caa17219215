"""An activity's page in the console: its attendance and its record — the materials linked
to it (by the day they were sent, or by hand: 归入/移出, audited), in scope."""

from __future__ import annotations

import datetime as dt
import re
import uuid

from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from bot.messages import Inbound, InboundKind, Media
from data.models import AuditEntry, Material
from tests.conftest import SHANGHAI
from tests.console.conftest import Console
from tests.queries import count

PARTY_DAY = "活动 主题党日 11月26日 15:00 90分钟 三楼会议室 学习新修订的条例"
DURING = dt.datetime(2026, 11, 26, 16, 0, tzinfo=SHANGHAI)


async def publish(console: Console, roster_id: str, line: str) -> int:
    found = re.search(r"编号 (\d+)", await console.chat.say(roster_id, line))
    assert found is not None
    return int(found.group(1))


async def send_picture(console: Console, roster_id: str, reference: str) -> str:
    conversation = console.chat.conversation
    inbound = Inbound(
        console.chat.sender(roster_id),
        uuid.uuid4().hex,
        InboundKind.MEDIA,
        conversation.clock.now(),
        media=(Media("image", reference),),
    )
    return await conversation.respond(inbound)


async def links(console: Console) -> dict[str, int | None]:
    async with console.chat.conversation.sessions() as session:
        rows = await session.exec(select(Material).order_by(col(Material.id)))
        return {m.reference: m.activity_id for m in rows}


async def material_id(console: Console, reference: str) -> int:
    async with console.chat.conversation.sessions() as session:
        found = (await session.exec(select(Material).where(Material.reference == reference))).one()
    assert found.id is not None
    return found.id


async def another(console: Console, roster_id: str) -> tuple[Console, str]:
    other = Console(TestClient(console.client.server), console.chat, console.clock)
    await other.client.start_server()
    return other, await other.sign_in(roster_id)


async def test_the_page_shows_the_linked_materials_and_links_one_by_hand(console: Console) -> None:
    number = await publish(console, "1003", PARTY_DAY)
    console.clock.set(DURING)
    await send_picture(console, "1003", "photo-1")  # on the day: linked
    console.clock.set(DURING - dt.timedelta(hours=8))  # that morning, before it: linked too
    await send_picture(console, "1003", "minutes-1")
    assert await links(console) == {"photo-1": number, "minutes-1": number}
    csrf = await console.sign_in("1003")
    minutes = await material_id(console, "minutes-1")

    unlinked = await console.client.post(
        f"/admin/activities/{number}/materials",
        data={"csrf": csrf, "material": str(minutes), "action": "unlink"},
        allow_redirects=False,
    )
    assert unlinked.status == 303
    html = await (await console.client.get(f"/admin/activities/{number}")).text()
    assert "活动资料 <small>1 份：图片 1" in html
    assert html.count("归入本活动") == 1 and html.count("移出本活动") == 1
    relinked = await console.client.post(
        f"/admin/activities/{number}/materials",
        data={"csrf": csrf, "material": str(minutes), "action": "link"},
    )

    assert "已把资料归入本活动" in await relinked.text()
    assert await links(console) == {"photo-1": number, "minutes-1": number}
    listing = await (await console.client.get("/admin/activities")).text()
    assert f'<a href="/admin/activities/{number}#materials">2 份</a>' in listing
    conversation = console.chat.conversation
    entries = await count(conversation, AuditEntry, col(AuditEntry.action).like("material.%"))
    assert entries == 2
    async with conversation.sessions() as session:
        last = (await session.exec(select(AuditEntry).order_by(col(AuditEntry.id)))).all()[-1]
    assert (last.action, last.door, last.object_id) == ("material.link", "console", str(minutes))
    gallery = await (await console.client.get("/admin/materials")).text()
    assert f'<a href="/admin/activities/{number}">活动 {number} 的资料</a>' in gallery


async def test_another_branch_sees_and_links_nothing(console: Console) -> None:
    number = await publish(console, "1003", PARTY_DAY)
    theirs = await publish(console, "2002", PARTY_DAY.replace("三楼会议室", "二楼"))
    console.clock.set(DURING)
    await send_picture(console, "1003", "photo-1")
    await send_picture(console, "2002", "photo-2")
    other, csrf = await another(console, "2002")
    ours = await material_id(console, "photo-1")
    their_own = await material_id(console, "photo-2")

    assert (await other.client.get(f"/admin/activities/{number}")).status == 404
    assert (await other.client.get("/admin/activities/999")).status == 404
    for activity, material in [(number, their_own), (theirs, ours), (theirs, 999)]:
        response = await other.client.post(
            f"/admin/activities/{activity}/materials",
            data={"csrf": csrf, "material": str(material), "action": "link"},
            allow_redirects=False,
        )
        assert response.status == 404
    assert await links(console) == {"photo-1": number, "photo-2": theirs}
    conversation = console.chat.conversation
    assert await count(conversation, AuditEntry, AuditEntry.action == "material.link") == 0
    admin, _ = await another(console, "9001")
    seen = await admin.client.get(f"/admin/activities/{number}")
    assert seen.status == 200 and "活动资料 <small>1 份" in await seen.text()
