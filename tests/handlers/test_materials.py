"""`资料`: secretaries record pictures and videos for their branch (linked to the activity of
the day they record)."""

from __future__ import annotations

import datetime as dt
import re
import uuid

from sqlmodel import col, select

from bot.messages import Inbound, InboundKind, Media
from data.models import Material
from tests.conftest import SHANGHAI, Chat


def activity_number(reply: str) -> int:
    found = re.search(r"编号 (\d+)", reply)
    assert found is not None, reply
    return int(found.group(1))


async def send_picture(chat: Chat, roster_id: str, reference: str) -> str:
    inbound = Inbound(
        chat.sender(roster_id),
        uuid.uuid4().hex,
        InboundKind.MEDIA,
        chat.conversation.clock.now(),
        media=(Media("image", reference),),
    )
    return await chat.conversation.respond(inbound)


async def recorded(chat: Chat) -> list[Material]:
    async with chat.conversation.sessions() as session:
        return list(await session.exec(select(Material).order_by(col(Material.id))))


async def test_caption_first_then_pictures(chat: Chat) -> None:
    waiting = await chat.say("1003", "资料 主题党日活动照片")
    assert "请在 10 分钟内发送图片或视频" in waiting
    assert "本支部本月共 1 份" in await send_picture(chat, "1003", "media-1")
    chat.conversation.clock.advance(minutes=5)
    assert "本支部本月共 2 份" in await send_picture(chat, "1003", "media-2")
    rows = await recorded(chat)
    assert [(r.reference, r.description, r.kind) for r in rows] == [
        ("media-1", "主题党日活动照片", "image"),
        ("media-2", "主题党日活动照片", "image"),
    ]
    # After the window the caption no longer applies.
    chat.conversation.clock.advance(minutes=11)
    reply = await send_picture(chat, "1003", "media-3")
    assert "补充说明请发送：资料 说明" in reply
    assert (await recorded(chat))[-1].description == ""


async def test_pictures_first_then_caption(chat: Chat) -> None:
    await send_picture(chat, "1003", "media-1")
    await send_picture(chat, "1003", "media-2")
    reply = await chat.say("1003", "资料 支委会记录")
    assert "已为刚才的 2 份资料加上说明：支委会记录" in reply
    assert {r.description for r in await recorded(chat)} == {"支委会记录"}


async def test_listing_this_months_materials(chat: Chat) -> None:
    await chat.say("1003", "资料 党课课件")
    await send_picture(chat, "1003", "media-1")
    reply = await chat.say("1003", "资料")
    assert "本支部11月资料 1 份：" in reply
    assert "11/25 图片 党课课件" in reply
    # Another branch's secretary sees their own (none).
    assert "本支部11月还没有报送资料" in await chat.say("2002", "资料")


async def test_an_admin_sees_every_branchs_count(chat: Chat) -> None:
    await chat.say("1003", "资料 党课课件")
    await send_picture(chat, "1003", "media-1")
    await send_picture(chat, "1003", "media-2")
    await send_picture(chat, "2002", "media-3")
    reply = await chat.say("9001", "资料")
    assert "11月各支部报送资料：" in reply
    assert "第一党支部 2 份" in reply and "第二党支部 1 份" in reply
    assert "机关党支部 0 份" in reply


async def test_a_plain_member_cannot_send_materials(chat: Chat) -> None:
    assert "暂时只能看懂文字和语音消息" in await send_picture(chat, "1001", "media-1")
    assert "没有使用“资料”的权限" in await chat.say("1001", "资料 照片")
    assert await recorded(chat) == []


async def test_materials_count_toward_the_branch_score(chat: Chat) -> None:
    for number in range(2):
        await send_picture(chat, "1003", f"media-{number}")
    from bot.reports.bulletins import month_report
    from bot.reports.periods import parse_period

    async with chat.conversation.sessions() as session:
        report = await month_report(
            session, parse_period("2026-11"), chat.conversation.report_context
        )
    first = next(b for b in report.branches if b.branch == "第一党支部")
    # 2 materials against a target of 4 a month.
    assert first.parts["materials"] == 2 / 4


# --- linked to the day's activity ---------------------------------------------------------


async def test_materials_sent_on_an_activitys_day_are_linked_to_it(chat: Chat) -> None:
    clock = chat.conversation.clock
    party_day = activity_number(
        await chat.say("1003", "活动 主题党日 11月26日 9:30 1小时 三楼 学习条例")
    )
    lecture = activity_number(await chat.say("1003", "活动 党课 11月26日 15:00 1小时 礼堂 党史"))
    other = activity_number(await chat.say("2002", "活动 支委会 11月26日 9:00 1小时 二楼 部署"))

    today = await send_picture(chat, "1003", "media-0")  # the day before: no activity
    clock.set(dt.datetime(2026, 11, 26, 8, 0, tzinfo=SHANGHAI))  # type: ignore[attr-defined]
    before_both = await send_picture(chat, "1003", "media-1")
    clock.set(dt.datetime(2026, 11, 26, 16, 0, tzinfo=SHANGHAI))  # type: ignore[attr-defined]
    after_the_lecture = await send_picture(chat, "1003", "media-2")
    theirs = await send_picture(chat, "2002", "media-3")
    member = await send_picture(chat, "1001", "media-4")

    assert "活动" not in today
    assert f"已归入今天的活动 {party_day}《学习条例》" in before_both
    assert f"已归入今天的活动 {lecture}《党史》" in after_the_lecture
    assert f"已归入今天的活动 {other}《部署》" in theirs
    assert "已记录资料" not in member  # members send no materials
    assert [(r.reference, r.activity_id) for r in await recorded(chat)] == [
        ("media-0", None),
        ("media-1", party_day),
        ("media-2", lecture),
        ("media-3", other),
    ]
