"""A 主题党日 over the real WeChat webhook: the secretary publishes it by the guided dialog,
the 30 people of the branch are notified, 25 sign in with codes across a rotation (5 of them
twice), 2 ask for leave, 1 is signed in by the organiser; the attendance sheet and the
branch's 组织生活 match what is worked out by hand."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.appkeys import CONVERSATION
from bot.clock import FixedClock
from bot.messages import Sender
from bot.reports.activity_sheets import month_activities
from bot.reports.bulletins import month_report
from bot.reports.periods import parse_period
from bot.settings import Settings
from data import members
from data.db import transaction
from data.members import RosterRow
from data.models import OutboxItem, Role
from tests.channels.test_wechat import AppClientFactory, WeChat, rows, start
from tests.conftest import SHANGHAI, make_settings

BRANCH = "第三党支部"
SECRETARY = "3000"
MEMBERS = [f"{3000 + n}" for n in range(1, 30)]  # 29 members and the secretary: 30 people
START = dt.datetime(2026, 11, 26, 15, 0, tzinfo=SHANGHAI)


def openid(roster_id: str) -> str:
    return f"oActivity{roster_id}xxxxxxxxxxxxxxx"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def wechat(
    aiohttp_client: AppClientFactory, settings: Settings, clock: FixedClock, engine: AsyncEngine
) -> WeChat:
    wechat = await start(aiohttp_client, settings, clock)
    conversation = wechat.client.app[CONVERSATION]
    roster = [RosterRow(SECRETARY, "孙书记", BRANCH, Role.SECRETARY)]
    roster += [RosterRow(r, f"党员{r}", BRANCH, Role.MEMBER) for r in MEMBERS]
    async with transaction(conversation.sessions) as session:
        await members.upsert_roster(session, roster, clock.now())
        for roster_id in [SECRETARY, *MEMBERS]:
            member = await members.member_by_roster_id(session, roster_id)
            assert member is not None
            await members.bind(session, Sender("wechat", openid(roster_id)), member, clock.now())
    return wechat


async def say(wechat: WeChat, roster_id: str, text: str) -> str:
    return str((await wechat.text(openid(roster_id), text))["Content"])


def move(wechat: WeChat, clock: FixedClock, at: dt.datetime) -> None:
    clock.set(at)
    wechat.now = int(at.timestamp())


async def code(wechat: WeChat) -> str:
    found = re.search(r"签到码：(\d{4})", await say(wechat, SECRETARY, "签到码 1"))
    assert found is not None
    return found.group(1)


async def test_a_party_day_from_notice_to_score(wechat: WeChat, clock: FixedClock) -> None:
    # The guided dialog, answer by answer.
    for answer, asks in [
        ("活动", "请回复活动类型"),
        ("主题党日", "请回复时间"),
        ("明天下午3点 90分钟", "请回复地点"),
        ("三楼会议室", "请回复活动主题"),
        ("学习新修订的条例", "请核对"),
    ]:
        assert asks in await say(wechat, SECRETARY, answer)
    assert "已发布活动（编号 1）" in await say(wechat, SECRETARY, "确认")
    notices = await rows(wechat, OutboxItem, OutboxItem.kind == "activity")
    assert len(notices) == 30

    for roster_id in MEMBERS[-2:]:
        assert "请假" in await say(wechat, roster_id, "请假 1 出差在外")

    move(wechat, clock, START - dt.timedelta(minutes=5))
    first = await code(wechat)
    for roster_id in MEMBERS[:12]:
        assert "签到成功" in await say(wechat, roster_id, f"签到 {first}")
    move(wechat, clock, START - dt.timedelta(minutes=3))  # the code has changed once
    for roster_id in MEMBERS[12:18]:  # the code read out before the change still works
        assert "签到成功" in await say(wechat, roster_id, f"签到 {first}")
    second = await code(wechat)
    for roster_id in [*MEMBERS[18:24], SECRETARY]:
        assert "签到成功" in await say(wechat, roster_id, f"签到 {second}")
    for roster_id in MEMBERS[:5]:  # a second time: counted once
        assert "已签到过" in await say(wechat, roster_id, f"签到 {second}")
    assert "补签" in await say(wechat, SECRETARY, f"补签 1 {MEMBERS[24]} 手机没电")

    conversation = wechat.client.app[CONVERSATION]
    november = parse_period("2026-11")
    async with conversation.sessions() as session:
        sheets = await month_activities(session, november, SHANGHAI)
        report = await month_report(session, november, conversation.report_context)
    [sheet] = sheets.sheets
    # 30 expected: 24 members and the secretary with codes, 1 by the organiser; 2 on leave;
    # members 3026 and 3027 absent.
    assert (len(sheet.rows), sheet.present, sheet.leave, sheet.absent) == (30, 26, 2, 2)
    absent = [row.roster_id for row in sheet.rows if row.state == ""]
    assert absent == ["3026", "3027"]
    # 组织生活 for 第三党支部 in November: held the party day of the five kinds expected
    # (1 + 0 + 0 + 0 + 0) / 5 = 0.2; attendance 26 / (30 - 2); (0.2 + 26/28) / 2.
    third = next(b for b in report.branches if b.branch == BRANCH)
    assert third.parts["organisation"] == pytest.approx((0.2 + 26 / 28) / 2)
    others = [b for b in report.branches if b.branch != BRANCH and b.parts]
    assert others and all(b.parts["organisation"] == 0.0 for b in others)
