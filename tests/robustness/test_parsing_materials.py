"""Materials (资料) from WeChat file messages and QQ (OneBot) video and file segments, over the
real webhooks: recorded like pictures, and listed with their kinds."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.appkeys import CONVERSATION, ENGINE
from bot.clock import FixedClock
from bot.messages import Sender
from bot.settings import Settings
from data import members
from data.db import transaction
from data.models import Material
from tests.channels.test_onebot import (
    SELF_ID,
    AppClientFactory,
    AppServerFactory,
    OneBot,
    text_segment,
)
from tests.channels.test_onebot import start as start_onebot
from tests.channels.test_wechat import WeChat, message_xml, parse_reply
from tests.channels.test_wechat import start as start_wechat

SECRETARY_OPENID = "oSecretary1003xxxxxxxxxxxxxx"
SECRETARY_QQ = 31415926


async def bind(app: Any, channel: str, external_id: str, roster_id: str) -> None:
    """Binds the account directly: these tests are about materials, not binding proofs."""
    conversation = app[CONVERSATION]
    async with transaction(conversation.sessions) as session:
        member = await members.member_by_roster_id(session, roster_id)
        assert member is not None
        await members.bind(session, Sender(channel, external_id), member, conversation.clock.now())


async def materials(client: TestClient) -> list[tuple[str, str, str]]:
    async with AsyncSession(client.app[ENGINE]) as session:
        found = await session.exec(select(Material).order_by(col(Material.id)))
        return [(m.kind, m.reference, m.description) for m in found]


@pytest.fixture
async def wechat(
    aiohttp_client: AppClientFactory, settings: Settings, clock: FixedClock, engine: AsyncEngine
) -> WeChat:
    wechat = await start_wechat(aiohttp_client, settings, clock)
    await bind(wechat.client.app, "wechat", SECRETARY_OPENID, "1003")
    return wechat


def file_message(wechat: WeChat, **fields: str) -> str:
    return message_xml(SECRETARY_OPENID, "file", wechat.now, MsgId=wechat.msg_id(), **fields)


async def test_a_wechat_file_is_a_material(wechat: WeChat) -> None:
    waiting = parse_reply(
        await wechat.exchange(
            message_xml(
                SECRETARY_OPENID,
                "text",
                wechat.now,
                Content="资料 支部学习计划",
                MsgId=wechat.msg_id(),
            )
        )
    )
    assert "10 分钟内" in waiting["Content"]
    xml = file_message(
        wechat,
        Title="2026年支部学习计划.docx",
        Description="",
        FileKey="file-key-1",
        FileMd5="5a4b3c2d1e0f",
        FileTotalLen="20480",
    )
    reply = parse_reply(await wechat.exchange(xml))
    assert "已记录资料 1 份：支部学习计划" in reply["Content"]
    assert await materials(wechat.client) == [("file", "file-key-1", "支部学习计划")]

    listing = await wechat.text(SECRETARY_OPENID, "资料")
    assert "文件 支部学习计划" in listing["Content"]


async def test_a_wechat_file_with_a_media_id_keeps_the_media_id(wechat: WeChat) -> None:
    await wechat.exchange(file_message(wechat, Title="a.pdf", FileKey="k", MediaId="media-9"))
    assert await materials(wechat.client) == [("file", "media-9", "")]


async def test_a_wechat_file_from_a_plain_member_is_not_a_material(wechat: WeChat) -> None:
    await bind(wechat.client.app, "wechat", "oMember1001xxxxxxxxxxxxxxxxx", "1001")
    xml = message_xml(
        "oMember1001xxxxxxxxxxxxxxxxx", "file", wechat.now, MsgId=wechat.msg_id(), FileKey="k"
    )
    reply = parse_reply(await wechat.exchange(xml))
    assert "暂时只能看懂文字和语音消息" in reply["Content"]
    assert await materials(wechat.client) == []


@pytest.fixture
async def onebot(
    aiohttp_client: AppClientFactory,
    aiohttp_server: AppServerFactory,
    database_url: str,
    clock: FixedClock,
    engine: AsyncEngine,
) -> OneBot:
    onebot = await start_onebot(aiohttp_client, aiohttp_server, database_url, clock)
    await bind(onebot.app, "qq", str(SECRETARY_QQ), "1003")
    return onebot


VIDEO = {"type": "video", "data": {"file": "party-day.mp4", "url": "http://127.0.0.1/v.mp4"}}
FILE = {"type": "file", "data": {"file": "计划.docx", "file_id": "/a1b2c3", "file_size": "2048"}}


async def test_qq_video_and_file_segments_are_materials(onebot: OneBot) -> None:
    answer = await onebot.say(SECRETARY_QQ, [text_segment("资料 主题党日"), VIDEO, FILE])
    assert "已记录资料 2 份：主题党日" in answer["reply"]
    assert await materials(onebot.client) == [
        ("video", "http://127.0.0.1/v.mp4", "主题党日"),
        ("file", "/a1b2c3", "主题党日"),
    ]
    listing = await onebot.say(SECRETARY_QQ, [text_segment("资料")])
    assert "视频 主题党日" in listing["reply"]
    assert "文件 主题党日" in listing["reply"]


async def test_qq_video_alone_as_a_cq_string_then_its_caption(onebot: OneBot) -> None:
    answer = await onebot.say(SECRETARY_QQ, "[CQ:video,file=a.mp4,url=http://127.0.0.1/a.mp4]")
    assert "已记录资料 1 份" in answer["reply"]
    described = await onebot.say(SECRETARY_QQ, "资料 志愿服务视频")
    assert "志愿服务视频" in described["reply"]
    assert await materials(onebot.client) == [("video", "http://127.0.0.1/a.mp4", "志愿服务视频")]


async def test_qq_file_in_a_group_with_the_bot_mentioned(onebot: OneBot) -> None:
    message = [{"type": "at", "data": {"qq": str(SELF_ID)}}, text_segment(" 资料 学习资料"), FILE]
    answer = await onebot.say(SECRETARY_QQ, message, group_id=123456)
    assert "已记录资料 1 份：学习资料" in answer["reply"]
    assert await materials(onebot.client) == [("file", "/a1b2c3", "学习资料")]
