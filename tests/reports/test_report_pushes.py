"""The monthly scores, pushed on the 1st to secretaries (with their branch) and admins."""

from __future__ import annotations

import datetime as dt

from sqlmodel import col, select

from bot import report_pushes
from bot.reports.periods import PeriodKind
from data import audit, groups
from data.db import transaction
from data.models import GroupPost, OutboxItem, PushKind
from tests.conftest import MORNING, SHANGHAI, Chat, make_settings


async def test_month_report_goes_to_staff_on_the_first(chat: Chat) -> None:
    conversation = chat.conversation
    await chat.say("2001", "学习 120")  # 第二党支部 leads November
    await chat.say("1001", "学习 30")
    conversation.clock.set(dt.datetime(2026, 12, 1, 8, 0, tzinfo=SHANGHAI))

    async with transaction(conversation.sessions) as session:
        done = await report_pushes.enqueue_report(
            session,
            conversation.settings,
            conversation.clock,
            conversation.report_context,
            PeriodKind.MONTH,
        )
    assert (done.kind, done.subject) == (PushKind.REPORT, "2026-11")
    async with conversation.sessions() as session:
        items = list(await session.exec(select(OutboxItem).order_by(col(OutboxItem.member_id))))
    # Secretaries 1003 and 2002 and admin 9001; plain members get nothing.
    assert len(items) == 3
    assert all("【2026年11月 支部评分】" in item.text for item in items)
    assert all("1. 第二党支部" in item.text for item in items)
    secretary_1003 = next(i for i in items if "本支部：第 2 名" in i.text)
    assert secretary_1003.kind == PushKind.REPORT.value
    assert sum("本支部" in item.text for item in items) == 2  # not the admin's

    # Running the job again the same day adds nothing.
    async with transaction(conversation.sessions) as session:
        again = await report_pushes.enqueue_report(
            session,
            conversation.settings,
            conversation.clock,
            conversation.report_context,
            PeriodKind.MONTH,
        )
    assert again.count == 0


async def test_report_is_posted_to_branch_groups(chat: Chat) -> None:
    conversation = chat.conversation
    settings = make_settings("sqlite+aiosqlite:///unused.db", onebot_api_url="http://127.0.0.1:9")
    async with transaction(conversation.sessions) as session:
        operator = audit.Actor(audit.Door.CLI, "cli:test@host", "host")
        await groups.set_group(session, "第一党支部", "qq", "123456", operator, MORNING)
    conversation.clock.set(dt.datetime(2027, 1, 1, 8, 10, tzinfo=SHANGHAI))
    async with transaction(conversation.sessions) as session:
        await report_pushes.enqueue_report(
            session, settings, conversation.clock, conversation.report_context, PeriodKind.YEAR
        )
    async with conversation.sessions() as session:
        posts = list(await session.exec(select(GroupPost)))
    assert [(p.group_id, p.kind) for p in posts] == [("123456", "report")]
    assert "【2026年 年终总结】" in posts[0].text
