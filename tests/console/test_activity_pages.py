"""活动 in the console: the list in scope, the full-screen sign-in page (the code of the
moment, its QR code as server-drawn SVG, a meta refresh when the code changes, no script),
and the form that publishes an activity through the chat's own operation."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from bot import activity_codes
from console.activity_pages import qr_svg
from data.models import Activity, ActivityBranch, AuditEntry, Branch, OutboxItem
from tests.conftest import SHANGHAI
from tests.console.conftest import Console
from tests.queries import count, member_id

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
    assert re.search(r'data-label="已签到">0</td>\s*<td class="num" data-label="请假">1</td>', mine)
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


# --- the form that publishes one ----------------------------------------------------------

GOOD = {
    "kind": "party_day",
    "title": "学习新修订的条例",
    "place": "三楼会议室",
    "starts": "2026-11-26T15:00",
    "ends": "2026-11-26T16:30",
}


async def post_form(console: Console, csrf: str, **fields: str | list[str]) -> ClientResponse:
    data: list[tuple[str, str]] = [("csrf", csrf)]
    for name, value in {**GOOD, **fields}.items():
        for one in [value] if isinstance(value, str) else value:
            data.append((name, one))
    return await console.client.post("/admin/activities/new", data=data, allow_redirects=False)


async def written(console: Console) -> tuple[int, int, int]:
    """Activities, outbox rows and activity audit rows: what a refused form must not add."""
    conversation = console.chat.conversation
    return (
        await count(conversation, Activity),
        await count(conversation, OutboxItem),
        await count(conversation, AuditEntry, AuditEntry.action == "activity.create"),
    )


async def test_a_secretary_publishes_from_the_console_as_from_the_chat(console: Console) -> None:
    csrf = await console.sign_in("1003")
    form = await console.client.get("/admin/activities/new")
    assert form.status == 200 and 'name="branch"' not in await form.text()

    response = await post_form(console, csrf, branch="4", audience="everyone")

    assert response.status == 303
    number = int(response.headers["Location"].rsplit("=", 1)[1])
    listing = await (await console.client.get(response.headers["Location"])).text()
    assert f"已发布活动（编号 {number}）" in listing and "学习新修订的条例" in listing
    conversation = console.chat.conversation
    async with conversation.sessions() as session:
        found = await session.get(Activity, number)
        assert found is not None
        branches = list(await session.exec(select(ActivityBranch.branch_id)))
        notices = list(await session.exec(select(OutboxItem).where(OutboxItem.kind == "activity")))
        reminders = await session.exec(
            select(OutboxItem.member_id).where(OutboxItem.kind == "activity_reminder")
        )
        entry = (await session.exec(select(AuditEntry))).all()[-1]
    secretary = await member_id(conversation, "1003")
    assert (found.kind, found.title, found.place, found.organiser_id) == (
        "party_day",
        "学习新修订的条例",
        "三楼会议室",
        secretary,
    )
    assert (found.starts_at, found.ends_at) == (START, START + dt.timedelta(minutes=90))
    # Their own branch only, whatever the form said; the chat's notice and reminder.
    assert branches == [found.branch_id] and found.role is None
    first_branch = {await member_id(conversation, r) for r in ("1001", "1002", "1003")}
    assert {n.member_id for n in notices} == first_branch == set(reminders)
    assert notices[0].text.startswith("【活动通知】主题党日《学习新修订的条例》")
    assert (entry.action, entry.door, entry.actor_id) == ("activity.create", "console", secretary)


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"starts": "2026-11-24T15:00", "ends": "2026-11-24T16:00"}, "开始时间已经过去"),
        ({"ends": "2026-11-26T14:00"}, "结束时间必须晚于开始时间"),
        ({"ends": "2026-11-26T15:00"}, "结束时间必须晚于开始时间"),
        ({"ends": "2026-11-27T03:01"}, "活动时长应在 10 分钟到 12 小时之间"),
        ({"starts": "明天下午"}, "请填写开始时间"),
        ({"capacity": "0"}, "名额应为 1 到 100000 之间的整数"),
        ({"capacity": "-3"}, "名额应为 1 到 100000 之间的整数"),
        ({"kind": "tea_party"}, "请选择活动类型"),
        ({"title": ""}, "请填写活动主题"),
        ({"place": "楼" * 101}, "地点太长"),
        ({"kind": "volunteer", "volunteer": "0.2"}, "志愿服务时长应为 0.5 到 24 小时"),
    ],
)
async def test_a_bad_field_is_named_and_nothing_is_written(
    console: Console, fields: dict[str, str], says: str
) -> None:
    csrf = await console.sign_in("1003")

    response = await post_form(console, csrf, **fields)

    assert response.status == 422
    html = await response.text()
    assert f'<span class="problem" role="alert">{says}' in html
    assert html.count('class="problem"') == 1
    assert await written(console) == (0, 0, 0)


async def test_an_activity_may_cross_midnight(console: Console) -> None:
    csrf = await console.sign_in("1003")

    response = await post_form(
        console, csrf, kind="volunteer", starts="2026-11-26T22:00", ends="2026-11-27T02:00"
    )

    assert response.status == 303
    async with console.chat.conversation.sessions() as session:
        found = (await session.exec(select(Activity))).one()
    assert found.ends_at - found.starts_at == dt.timedelta(hours=4)
    assert found.volunteer_minutes == 240  # a volunteer activity credits its length


async def test_a_time_taken_is_refused_naming_the_other(console: Console) -> None:
    number = await publish(console)
    csrf = await console.sign_in("1003")
    before = await written(console)

    response = await post_form(console, csrf, starts="2026-11-26T16:00", ends="2026-11-26T17:00")

    assert response.status == 422
    assert f"时间与活动 {number} 主题党日《学习新修订的条例》" in await response.text()
    assert await written(console) == before
    touching = await post_form(console, csrf, starts="2026-11-26T16:30", ends="2026-11-26T17:00")
    assert touching.status == 303


async def test_an_admin_chooses_branches_a_role_or_everyone_with_a_capacity(
    console: Console,
) -> None:
    csrf = await console.sign_in("9001")
    async with console.chat.conversation.sessions() as session:
        ids = {b.name: b.id for b in await session.exec(select(Branch))}
    page = await (await console.client.get("/admin/activities/new")).text()
    assert page.count('name="branch"') == len(ids)

    none_chosen = await post_form(console, csrf)
    both = [str(ids["第一党支部"]), str(ids["第二党支部"])]
    to_two = await post_form(console, csrf, branch=both, role="secretary")
    everyone = await post_form(
        console,
        csrf,
        kind="training",
        audience="everyone",
        capacity="30",
        starts="2026-11-27T19:00",
        ends="2026-11-27T21:00",
    )

    assert none_chosen.status == 422 and "请至少选择一个支部" in await none_chosen.text()
    assert (to_two.status, everyone.status) == (303, 303)
    async with console.chat.conversation.sessions() as session:
        first, second = list(await session.exec(select(Activity).order_by(col(Activity.id))))
        named = set(await session.exec(select(ActivityBranch.branch_id)))
        told = list(await session.exec(select(OutboxItem).where(OutboxItem.kind == "activity")))
    assert (first.role, first.branch_id, first.capacity) == ("secretary", None, None)
    assert named == {ids["第一党支部"], ids["第二党支部"]}  # the second has none: every branch
    assert (second.kind, second.capacity, second.branch_id, second.role) == (
        "training",
        30,
        None,
        None,
    )
    # The secretaries of the two branches; then all six, invited to sign up.
    assert len(told) == 2 + 6


async def test_a_branch_that_is_not_there_is_not_found(console: Console) -> None:
    csrf = await console.sign_in("9001")

    assert (await post_form(console, csrf, branch="999")).status == 404
    assert (await post_form(console, csrf, branch="1; drop")).status == 404
    assert await written(console) == (0, 0, 0)


async def test_the_form_needs_its_csrf_token_and_stays_small(console: Console) -> None:
    await console.sign_in("1003")

    forged = await post_form(console, "not-the-token")
    huge = await post_form(console, await console.csrf(), title="条" * 30_000)

    assert forged.status == 403
    assert huge.status == 413
    assert await written(console) == (0, 0, 0)
