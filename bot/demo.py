"""`qiyi demo`: a throwaway database with a sample roster and the shipped content."""

from __future__ import annotations

import datetime as dt

from bot.messages import Sender
from data import articles, members
from data.db import Sessions, transaction
from data.members import RosterRow
from data.models import Role

TOKEN = "qiyi-demo-token"
OPENID = "o_demo_member_1001"
ROSTER = [
    RosterRow("1001", "张三", "第一党支部", Role.MEMBER),
    RosterRow("1002", "李四", "第一党支部", Role.MEMBER),
    RosterRow("1003", "王芳", "第一党支部", Role.SECRETARY),
    RosterRow("2001", "赵强", "第二党支部", Role.MEMBER),
    RosterRow("2002", "陈静", "第二党支部", Role.SECRETARY),
    RosterRow("9001", "刘洋", "机关党支部", Role.ADMIN),
]


async def seed(sessions: Sessions, now: dt.datetime) -> None:
    from content.library import read_all

    async with transaction(sessions) as session:
        await members.upsert_roster(session, ROSTER, now)
        await articles.upsert(session, read_all())
        member = await members.member_by_roster_id(session, ROSTER[0].member_id)
        assert member is not None
        await members.bind(session, Sender("wechat", OPENID), member, now)
