"""活动 in the console: the list in scope and the full-screen sign-in page (the code of the
moment, its QR code as server-drawn SVG, a meta refresh when the code changes, no script)."""

from __future__ import annotations

import datetime as dt
import re

from aiohttp.test_utils import TestClient

from bot import activity_codes
from console.activity_pages import qr_svg
from data.models import Activity
from tests.conftest import SHANGHAI
from tests.console.conftest import Console

START = dt.datetime(2026, 11, 26, 15, 0, tzinfo=SHANGHAI)
PARTY_DAY = "活动 主题党日 11月26日 15:00 90分钟 三楼会议室 学习新修订的条例"


async def publish(console: Console) -> int:
    reply = await console.chat.say("1003", PARTY_DAY)
    found = re.search(r"编号 (\d+)", reply)
    assert found is not None, reply
    return int(found.group(1))


async def another(console: Console, roster_id: str) -> Console:
    other = Console(TestClient(console.client.server), console.chat, console.clock)
    await other.client.start_server()
    await other.sign_in(roster_id)
    return other


async def test_the_list_shows_the_branchs_activities_with_attendance(console: Console) -> None:
    number = await publish(console)
    await console.chat.say("1001", f"请假 {number} 出差")
    await console.sign_in("1003")
    other = await another(console, "2002")
    admin = await another(console, "9001")

    mine = await (await console.client.get("/admin/activities")).text()
    theirs = await (await other.client.get("/admin/activities")).text()
    everyone = await (await admin.client.get("/admin/activities")).text()

    assert "学习新修订的条例" in mine and f"/admin/activities/{number}/code" in mine
    assert re.search(r"<td class=\"num\">0</td>\s*<td class=\"num\">1</td>", mine)
    assert "学习新修订的条例" not in theirs and "近期没有活动" in theirs
    assert "学习新修订的条例" in everyone


async def test_the_sign_in_screen_shows_the_code_and_its_qr(console: Console) -> None:
    number = await publish(console)
    console.clock.set(START + dt.timedelta(seconds=30))
    await console.sign_in("1003")

    response = await console.client.get(f"/admin/activities/{number}/code")

    assert response.status == 200
    html = await response.text()
    async with console.chat.conversation.sessions() as session:
        activity = await session.get(Activity, number)
        assert activity is not None
    code = activity_codes.current_code(activity.secret, console.clock.now())
    assert f'<p class="signin-code">{code}</p>' in html
    assert str(qr_svg(f"签到 {number} {code}")) in html
    changes = activity_codes.changes_at(console.clock.now())
    seconds = int((changes - console.clock.now()).total_seconds()) + 1
    assert f'<meta http-equiv="refresh" content="{seconds}">' in html
    assert "<script" not in html
    # The member who scans it sends what it says, and is signed in.
    assert "签到成功" in await console.chat.say("1001", f"签到 {number} {code}")


async def test_the_sign_in_screen_outside_the_window(console: Console) -> None:
    number = await publish(console)
    await console.sign_in("1003")

    before = await (await console.client.get(f"/admin/activities/{number}/code")).text()
    console.clock.set(START + dt.timedelta(minutes=91))
    await console.sign_in("1003")  # a day on: the morning's console session has ended
    after = await (await console.client.get(f"/admin/activities/{number}/code")).text()

    assert "现在不在签到时段" in before and 'content="60"' in before
    assert "signin-code" not in before
    assert "现在不在签到时段" in after and "http-equiv" not in after


async def test_another_branchs_sign_in_screen_is_not_found(console: Console) -> None:
    number = await publish(console)
    console.clock.set(START)
    other = await another(console, "2002")

    assert (await other.client.get(f"/admin/activities/{number}/code")).status == 404
    assert (await other.client.get("/admin/activities/999/code")).status == 404
    admin = await another(console, "9001")
    assert (await admin.client.get(f"/admin/activities/{number}/code")).status == 200
