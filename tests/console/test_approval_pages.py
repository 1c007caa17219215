"""审核 in the console: several entries approved or rejected at once through the same
operation as the chat — points, notices and audit rows alike; scope, own entries, CSRF."""

from __future__ import annotations

import re

from sqlmodel import col, select

from bot.appkeys import ENGINE
from data.db import session_factory
from data.models import AuditEntry, OutboxItem, VolunteerEntry
from tests.console.conftest import Console


async def entries(console: Console) -> dict[int, VolunteerEntry]:
    async with session_factory(console.client.app[ENGINE])() as session:
        rows = await session.exec(select(VolunteerEntry).order_by(col(VolunteerEntry.id)))
        return {entry.id or 0: entry for entry in rows}


async def submit(console: Console, roster_id: str, text: str) -> int:
    reply = await console.chat.say(roster_id, text)
    found = re.search(r"编号 (\d+)", reply)
    assert found, reply
    return int(found.group(1))


async def test_approve_three_at_once_and_the_points_reach_the_member(console: Console) -> None:
    first = await submit(console, "1001", "志愿 2 社区敬老院陪老人")
    second = await submit(console, "1001", "志愿 1 清扫楼道")
    third = await submit(console, "1002", "志愿 3 义务献血宣传")
    foreign = await submit(console, "2001", "志愿 2 第二支部的活动")
    before = await console.chat.say("1001", "积分")
    csrf = await console.sign_in("1003")

    listing = await (await console.client.get("/admin/approvals")).text()
    assert f"#{first}" in listing and f"#{third}" in listing
    assert f"#{foreign}" not in listing  # another branch's entry is not even listed
    done = await console.client.post(
        "/admin/approvals",
        data=[
            ("csrf", csrf),
            ("decision", "approve"),
            ("entry", str(first)),
            ("entry", str(second)),
            ("entry", str(third)),
        ],
    )
    assert done.status == 200 and "已通过 3 条" in await done.text()

    states = {entry_id: entry.state for entry_id, entry in (await entries(console)).items()}
    assert states == {first: "approved", second: "approved", third: "approved", foreign: "pending"}
    after = await console.chat.say("1001", "积分")
    assert after != before and "志愿服务" in after
    async with session_factory(console.client.app[ENGINE])() as session:
        notices = (await session.exec(select(OutboxItem).where(OutboxItem.kind == "review"))).all()
        audit = (
            await session.exec(select(AuditEntry).where(AuditEntry.action == "volunteer.approve"))
        ).all()
    assert len(notices) == 3
    assert sorted(int(a.object_id) for a in audit) == [first, second, third]
    assert {(a.door, a.actor) for a in audit} == {("console", "王芳（1003）")}


async def test_another_branchs_entry_by_tampering_is_skipped(console: Console) -> None:
    foreign = await submit(console, "2001", "志愿 2 第二支部的活动")
    csrf = await console.sign_in("1003")

    response = await console.client.post(
        "/admin/approvals", data={"csrf": csrf, "decision": "approve", "entry": str(foreign)}
    )
    assert "1 条未处理" in await response.text()
    assert (await entries(console))[foreign].state == "pending"


async def test_reject_needs_a_reason_and_tells_the_member(console: Console) -> None:
    entry = await submit(console, "1001", "志愿 2 社区敬老院陪老人")
    csrf = await console.sign_in("1003")

    missing = await console.client.post(
        "/admin/approvals", data={"csrf": csrf, "decision": "reject", "entry": str(entry)}
    )
    assert missing.status == 400 and "驳回需要填写原因" in await missing.text()
    assert (await entries(console))[entry].state == "pending"

    await console.client.post(
        "/admin/approvals",
        data={"csrf": csrf, "decision": "reject", "entry": str(entry), "reason": "缺少活动照片"},
    )
    rejected = (await entries(console))[entry]
    assert rejected.state == "rejected" and rejected.reason == "缺少活动照片"
    assert "缺少活动照片" in await console.chat.say("1001", "今日")


async def test_nobody_approves_their_own_entry(console: Console) -> None:
    own = await submit(console, "1003", "志愿 2 自己的服务")
    csrf = await console.sign_in("1003")
    listing = await (await console.client.get("/admin/approvals")).text()
    assert f'value="{own}"' not in listing  # no checkbox for it
    await console.client.post(
        "/admin/approvals", data={"csrf": csrf, "decision": "approve", "entry": str(own)}
    )
    assert (await entries(console))[own].state == "pending"


async def test_bad_forms_change_nothing(console: Console) -> None:
    entry = await submit(console, "1001", "志愿 2 社区敬老院陪老人")
    csrf = await console.sign_in("1003")
    for data in (
        {"decision": "approve", "entry": str(entry)},  # no CSRF token
        {"csrf": csrf, "decision": "approve", "entry": "١٢"},
        {"csrf": csrf, "decision": "approve", "entry": "9" * 25},
        {"csrf": csrf, "decision": "delete", "entry": str(entry)},
        {"csrf": csrf, "decision": "approve"},
    ):
        response = await console.client.post("/admin/approvals", data=data)
        assert response.status in (400, 403), data
    assert (await entries(console))[entry].state == "pending"
