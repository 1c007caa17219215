"""推送: the outbox for staff — each push with its member (工号 and name), its state and every
try (the rung and the platform's answer); failed ones sent again; the scheduled jobs and
their next runs. A secretary sees their branch's members' pushes only."""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from bot import push_retries
from bot.appkeys import SESSIONS, SETTINGS
from bot.channel_names import CHANNEL_NAMES
from console.rendering import page
from console.staff import CLOCK, STAFF, actor_of
from data import outbox_listing
from data.db import transaction
from data.models import PushKind
from scheduler.jobs import next_runs

routes = web.RouteTableDef()
STATE_NAMES = {
    "pending": "等待发送",
    "sending": "发送中",
    "sent": "已送达",
    "fallback": "模板消息",
    "mailbox": "留言箱",
    "failed": "失败",
    "skipped": "未送达",
}
KIND_NAMES = {
    "lesson": "微党课",
    "news": "微资讯",
    "video": "微视频",
    "reminder": "学习提醒",
    "review": "审核结果",
    "report": "评分报告",
    "notice": "通知",
    "activity": "活动通知",
    "activity_reminder": "活动提醒",
    "security": "安全提醒",
    "alert": "系统提醒",
}
METHOD_NAMES = {
    "custom": "微信客服消息",
    "news": "微信图文消息",
    "video": "微信视频消息",
    "template": "微信模板消息",
    "mailbox": "留言箱",
    "reply": "随回复送达",
    "image": "微信图片消息",
    "qq": "QQ 私聊",
    "qq-group": "QQ 群",
    "wecom": "企业微信应用消息",
    "none": "无可用渠道",
    "qqbot": "QQ 机器人",
    "qqbot-group": "QQ 机器人群",
    "dispatch": "发送程序",
}
JOB_NAMES = {
    "lesson": "推送新的微党课",
    "news": "推送新的微资讯",
    "video": "推送新的微视频",
    "reminders": "提醒未达标的成员",
    "month_report": "上月支部评分（每月1日）",
    "quarter_report": "季度通报（每季度首日）",
    "year_report": "年终总结（1月1日）",
    "forget_processed": "夜间清理",
    "fetch_materials": "保存新收到的资料文件",
    "retry_materials": "重试保存失败的资料文件（夜间）",
}
MOST_RETRIED = outbox_listing.PAGE_SIZE


def _id(text: str | None) -> int | None:
    if not text or not text.isascii() or not text.isdigit() or len(text) > 12:
        return None
    return int(text)


def _query(request: web.Request) -> outbox_listing.Query:
    values = request.query
    state = values.get("state")
    kind = values.get("kind")
    day = None
    try:
        day = dt.date.fromisoformat(values.get("day", "")[:10]) if values.get("day") else None
    except ValueError:
        day = None
    return outbox_listing.Query(
        state=state if state in STATE_NAMES else None,
        kind=kind if kind in {k.value for k in PushKind} else None,
        member=values.get("member", "").strip()[:50],
        day=day,
        before=_id(values.get("before")),
    )


@routes.get("/pushes", name="pushes")
async def push_list(request: web.Request) -> web.StreamResponse:
    staff = request[STAFF]
    query = _query(request)
    async with request.config_dict[SESSIONS]() as session:
        rows = await outbox_listing.page(session, query, staff.branch_scope)
        ids = [item.id for item, _, _ in rows if item.id is not None]
        tries = await outbox_listing.attempts_of(session, ids)
    clock = request.app[CLOCK]
    jobs = next_runs(request.config_dict[SETTINGS], clock.now()) if staff.is_admin else []
    return page(
        request,
        "pushes",
        rows=rows,
        tries=tries,
        query=query,
        more=len(rows) == outbox_listing.PAGE_SIZE,
        any_failed=any(item.state == "failed" for item, _, _ in rows),
        states=STATE_NAMES,
        kinds=KIND_NAMES,
        methods=METHOD_NAMES,
        channels=CHANNEL_NAMES,
        jobs=jobs,
        job_names=JOB_NAMES,
        zone=clock.zone,
        retried=request.query.get("retried", "")[:6],
    )


@routes.post("/pushes/retry", name="pushes-retry")
async def push_retry(request: web.Request) -> web.StreamResponse:
    """The ticked failed pushes (in the staff member's scope) back to pending, due now; the
    dispatcher sends them within seconds."""
    staff = request[STAFF]
    form = await request.post()
    chosen = [_id(str(value)) for value in form.getall("item", [])][:MOST_RETRIED]
    wanted = [item_id for item_id in chosen if item_id is not None]
    now = request.app[CLOCK].now()
    async with transaction(request.config_dict[SESSIONS]) as session:
        mine = await outbox_listing.in_scope(session, wanted, staff.branch_scope)
        again = await push_retries.retry(session, actor_of(request), mine, now) if mine else 0
    raise web.HTTPSeeOther(f"/admin/pushes?state=failed&retried={again}")
