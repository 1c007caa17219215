"""推送 and 通知 in the console: the outbox by member, kind and state with every try, failed
pushes sent again (in scope, audited); a notice previewed with its reach, then queued once
per member — a form sent twice queues nothing more — for the audience staff may address."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from sqlalchemy import update
from sqlmodel import col, select

from bot.appkeys import CONVERSATION
from bot.clock import today
from console import push_pages
from data import notices
from data.db import transaction
from data.models import (
    AuditEntry,
    Binding,
    DeliveryAttempt,
    Member,
    Notice,
    OutboxItem,
    OutboxState,
    PushKind,
)
from data.notices import Audience
from data.outbox import Push, enqueue
from tests.console.conftest import Console
from tests.queries import count, member_id


async def admin(console: Console) -> tuple[Console, str]:
    other = Console(TestClient(console.client.server), console.chat, console.clock)
    await other.client.start_server()
    return other, await other.sign_in("9001")


async def post(browser: Console, path: str, data: Any) -> ClientResponse:
    return await browser.client.post(path, data=data, allow_redirects=False)


async def push_to(console: Console, roster_id: str, ref: str) -> int:
    conversation = console.client.app[CONVERSATION]
    now = console.clock.now()
    mid = await member_id(conversation, roster_id)
    push = Push(mid, PushKind.NEWS, ref, today(console.clock), "新闻", "新闻", now)
    async with transaction(conversation.sessions) as session:
        await enqueue(session, [push], now)
        item = (await session.exec(select(OutboxItem).where(OutboxItem.key == push.key))).one()
        assert item.id is not None
        return item.id


async def fail(console: Console, item_id: int, errcode: int) -> None:
    conversation = console.client.app[CONVERSATION]
    async with transaction(conversation.sessions) as session:
        await session.exec(
            update(OutboxItem)
            .where(col(OutboxItem.id) == item_id)
            .values(state=OutboxState.FAILED.value, last_error=f"{errcode} refused")
        )
        session.add(
            DeliveryAttempt(
                outbox_id=item_id,
                at=console.clock.now(),
                method="custom",
                ok=False,
                errcode=errcode,
                detail=f"{errcode} api unauthorized",
            )
        )


async def state_of(console: Console, item_id: int) -> str:
    async with console.client.app[CONVERSATION].sessions() as session:
        item = await session.get(OutboxItem, item_id)
        assert item is not None
        return item.state


async def test_a_secretary_sees_and_retries_only_their_branchs_pushes(console: Console) -> None:
    own = await push_to(console, "1001", "a")
    other = await push_to(console, "2001", "a")
    await fail(console, own, 48001)
    await fail(console, other, 48001)
    csrf = await console.sign_in("1003")

    page = await (await console.client.get("/admin/pushes")).text()
    assert "张三" in page and "赵强" not in page
    assert "错误码 48001" in page and "微信客服消息" in page
    assert "定时任务" not in page  # the jobs are the admins'
    searched = await (await console.client.get("/admin/pushes?member=赵强")).text()
    assert "没有符合条件的推送" in searched

    tampered = await post(console, "/admin/pushes/retry", {"csrf": csrf, "item": [other]})
    assert tampered.headers["Location"].endswith("retried=0")
    assert await state_of(console, other) == "failed"
    done = await post(console, "/admin/pushes/retry", {"csrf": csrf, "item": [own, other]})
    assert done.headers["Location"].endswith("retried=1")
    assert await state_of(console, own) == "pending"
    conversation = console.client.app[CONVERSATION]
    assert await count(conversation, AuditEntry, AuditEntry.action == "outbox.retry") == 1


async def test_the_admin_filters_the_outbox_and_sees_the_jobs(console: Console) -> None:
    first = await push_to(console, "1001", "a")
    await push_to(console, "2001", "a")
    await fail(console, first, 40164)
    browser, _ = await admin(console)
    try:
        everyone = await (await browser.client.get("/admin/pushes")).text()
        failed = await (await browser.client.get("/admin/pushes?state=failed")).text()
        jobs = await (await browser.client.get("/admin/pushes?kind=video")).text()
    finally:
        await browser.client.session.close()
    assert "张三" in everyone and "赵强" in everyone
    assert "张三" in failed and "赵强" not in failed
    assert "没有符合条件的推送" in jobs
    assert "推送新的微党课" in jobs and "下次 11-26 07:30" in jobs


def test_every_state_kind_and_job_has_a_chinese_name() -> None:
    from scheduler.jobs import triggers
    from tests.conftest import make_settings

    assert set(push_pages.STATE_NAMES) == {state.value for state in OutboxState}
    assert set(push_pages.KIND_NAMES) == {kind.value for kind in PushKind}
    assert set(push_pages.JOB_NAMES) == set(triggers(make_settings("sqlite+aiosqlite:///x.db")))


TOKEN = "t" * 32


async def outbox_members(console: Console, kind: PushKind) -> list[str]:
    async with console.client.app[CONVERSATION].sessions() as session:
        rows = await session.exec(
            select(Member.roster_id)
            .join(OutboxItem, col(OutboxItem.member_id) == col(Member.id))
            .where(OutboxItem.kind == kind.value)
        )
        return sorted(rows)


async def test_a_notice_is_previewed_then_sent_once_to_the_chosen_branch(console: Console) -> None:
    async with console.client.app[CONVERSATION].sessions() as session:
        second = await session.exec(select(Member.branch_id).where(Member.roster_id == "2001"))
        branch = second.one()
    form = {"text": "周五下午三点开支部党员大会", "token": TOKEN, "branch": str(branch)}
    browser, csrf = await admin(console)
    try:
        preview = await post(browser, "/admin/notices/new", {**form, "csrf": csrf})
        page = await preview.text()
        assert await outbox_members(console, PushKind.NOTICE) == []
        sent = await post(browser, "/admin/notices/new", {**form, "csrf": csrf, "action": "send"})
        again = await post(browser, "/admin/notices/new", {**form, "csrf": csrf, "action": "send"})
    finally:
        await browser.client.session.close()
    assert "【通知】周五下午三点开支部党员大会" in page and "——机关党支部 刘洋" in page
    assert "符合条件的成员 2 人，能送达 2 人" in page
    assert sent.headers["Location"] == "/admin/notices?sent=2"
    assert again.headers["Location"] == "/admin/notices?sent=2"  # the same notice
    assert await outbox_members(console, PushKind.NOTICE) == ["2001", "2002"]
    conversation = console.client.app[CONVERSATION]
    assert await count(conversation, Notice) == 1
    assert await count(conversation, AuditEntry, AuditEntry.action == "notice.send") == 1


async def test_a_secretary_notifies_their_own_branch_whatever_the_form_says(
    console: Console,
) -> None:
    async with console.client.app[CONVERSATION].sessions() as session:
        other = await session.exec(select(Member.branch_id).where(Member.roster_id == "2001"))
        branch = other.one()
    csrf = await console.sign_in("1003")
    form = {"csrf": csrf, "text": "明早八点集合", "token": TOKEN, "action": "send"}
    sent = await post(console, "/admin/notices/new", {**form, "branch": str(branch)})
    assert sent.status == 303
    assert await outbox_members(console, PushKind.NOTICE) == ["1001", "1002", "1003"]
    listed = await (await console.client.get("/admin/notices")).text()
    assert "明早八点集合" in listed


async def test_an_empty_notice_or_an_unknown_branch_sends_nothing(console: Console) -> None:
    browser, csrf = await admin(console)
    try:
        empty = await post(
            browser, "/admin/notices/new", {"csrf": csrf, "text": " ", "token": TOKEN}
        )
        unknown = await post(
            browser,
            "/admin/notices/new",
            {"csrf": csrf, "text": "通知", "token": TOKEN, "branch": "999999", "action": "send"},
        )
        long = await post(
            browser,
            "/admin/notices/new",
            {"csrf": csrf, "text": "长" * 601, "token": TOKEN, "action": "send"},
        )
    finally:
        await browser.client.session.close()
    assert empty.status == 422 and "请填写通知内容" in await empty.text()
    assert unknown.status == 404
    assert long.status == 422
    assert await outbox_members(console, PushKind.NOTICE) == []


async def test_the_reach_follows_the_dispatchers_order(console: Console) -> None:
    """1001: WeChat in its window; 1002: WeChat out of it; 2001: QQ alone; 2002: nothing
    that follows; everyone else: another channel (the mailbox)."""
    conversation = console.client.app[CONVERSATION]
    now = console.clock.now()
    ids = {r: await member_id(conversation, r) for r in ("1001", "1002", "2001", "2002")}
    async with transaction(conversation.sessions) as session:
        for roster_id, channel, until in (
            ("1001", "wechat", now + dt.timedelta(hours=1)),
            ("1002", "wechat", None),
            ("2001", "qq", None),
        ):
            mid = ids[roster_id]
            session.add(
                Binding(
                    channel=channel,
                    external_id=f"x{roster_id}",
                    member_id=mid,
                    bound_at=now,
                    window_until=until,
                    window_budget=5,
                )
            )
        await session.exec(
            update(Binding).where(col(Binding.member_id) == ids["2002"]).values(reachable=False)
        )
    async with conversation.sessions() as session:
        plain = await notices.reach(session, Audience(), now, template=False, qq=True)
        templated = await notices.reach(session, Audience(), now, template=True, qq=False)
    assert plain.members == 6 and plain.reachable == 5
    assert plain.rungs == {"window": 1, "template": 0, "mailbox": 3, "qq": 1}
    assert templated.rungs == {"window": 1, "template": 1, "mailbox": 3, "qq": 0}
