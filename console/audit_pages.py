"""审计: the append-only log of what staff changed, read-only; a secretary sees the entries
about their own branch, an admin all. Filtered, paged, exported as XLSX."""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import dataclass

from aiohttp import web
from openpyxl import Workbook

from bot.appkeys import SESSIONS
from bot.sheets import write_cell
from console.rendering import page
from console.staff import CLOCK, STAFF
from data import audit
from data.models import AuditEntry

routes = web.RouteTableDef()
PAGE_ROWS = 50
EXPORT_ROWS = 10_000
ACTIONS = {
    "member.bind": "绑定账号",
    "member.unbind": "解除绑定",
    "member.role": "变更角色",
    "member.branch": "调整支部",
    "member.leave": "标记离开",
    "member.leave_undo": "撤销离开",
    "member.add": "名册新增",
    "member.import": "名册更新",
    "invitation.issue": "发放邀请码",
    "invitation.lock": "锁定绑定",
    "volunteer.approve": "志愿审核通过",
    "volunteer.reject": "志愿审核驳回",
    "group.set": "设置支部群",
    "console.sign_in": "登录后台",
    "console.link": "生成登录链接",
    "roster.export": "导出名册",
    "article.create": "新建内容",
    "article.edit": "修改内容",
    "article.restore": "恢复内容版本",
    "article.publish": "发布内容",
    "article.unpublish": "下线内容",
    "notice.send": "发送通知",
    "outbox.retry": "重发推送",
    "month.grade": "月打分",
    "month.close": "关账",
    "month.reopen": "重新开账",
    "activity.create": "发布活动",
    "activity.sign_in": "活动补签",
    "material.link": "资料归入活动",
    "material.unlink": "资料移出活动",
}
# What the recorded fields and objects are called, and the values that have a name.
FIELDS = {
    "name": "姓名",
    "branch": "支部",
    "role": "角色",
    "left_on": "离开日期",
    "channels": "渠道",
    "channel": "渠道",
    "member": "成员",
    "state": "状态",
    "points": "积分",
    "reason": "原因",
    "issued_at": "发放时间",
    "browser": "浏览器",
    "how": "方式",
    "proof": "凭据",
    "kind": "类别",
    "title": "标题",
    "summary": "摘要",
    "url": "链接",
    "publish_at": "发布时间",
    "hidden": "已下线",
    "body_chars": "正文字数",
    "quiz_question": "测验题目",
    "quiz_answer": "测验答案",
    "quiz_explanation": "测验解析",
    "to": "对象",
    "text": "内容",
    "recipients": "人数",
    "retried": "条数",
    "rows": "行数",
    "members": "人数",
    "grade": "评分",
    "comment": "评语",
    "month": "月份",
    "activity_id": "活动编号",
}
VALUES = {
    "member": "党员",
    "secretary": "支部书记",
    "admin": "管理员",
    "pending": "待审核",
    "approved": "已通过",
    "rejected": "已驳回",
    "True": "是",
    "False": "否",
}
OBJECTS = {
    "member": "成员",
    "volunteer": "志愿记录",
    "article": "内容",
    "notice": "通知",
    "outbox": "推送",
    "roster": "名册",
    "branch_group": "支部群",
    "branch": "支部",
    "month": "月份",
    "activity": "活动",
    "material": "资料",
}
DOORS = {"chat": "聊天", "console": "后台", "cli": "命令行", "system": "系统"}


@dataclass(frozen=True)
class Filters:
    action: str | None
    door: str | None
    before_id: int | None

    @classmethod
    def read(cls, request: web.Request) -> Filters:
        """Only known values are used: anything else from the address bar is ignored."""
        query = request.query
        action = query.get("action") if query.get("action") in ACTIONS else None
        door = query.get("door") if query.get("door") in DOORS else None
        before = query.get("before", "")
        before_id = (
            int(before) if before.isascii() and before.isdigit() and len(before) < 12 else None
        )
        return cls(action, door, before_id)


def _value(value: object) -> str:
    if value is None:
        return ""
    return VALUES.get(str(value), str(value))


def _change(entry: AuditEntry) -> str:
    """before → after, as "field: old → new" pairs a person can read; a field recorded on
    one side only is what it was (before) or became (after)."""
    before = json.loads(entry.before) if entry.before else {}
    after = json.loads(entry.after) if entry.after else {}
    parts = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        name = FIELDS.get(key, key)
        if key not in after:
            parts.append(f"{name}：{_value(old)}")
        elif key not in before:
            parts.append(f"{name}：{_value(new)}")
        else:
            parts.append(f"{name}：{_value(old)} → {_value(new)}")
    return "；".join(parts)


def _rows(entries: list[AuditEntry], zone: dt.tzinfo) -> list[dict[str, str]]:
    return [
        {
            "id": str(entry.id),
            "at": entry.at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
            "actor": entry.actor,
            "door": DOORS.get(entry.door, entry.door),
            "origin": entry.origin,
            "action": ACTIONS.get(entry.action, entry.action),
            "object": f"{OBJECTS.get(entry.object_type, entry.object_type)} {entry.object_id}",
            "change": _change(entry),
        }
        for entry in entries
    ]


async def _entries(request: web.Request, filters: Filters, limit: int) -> list[AuditEntry]:
    staff = request[STAFF]
    async with request.config_dict[SESSIONS]() as session:
        return list(
            await audit.entries(
                session,
                branch_id=staff.branch_scope,
                action=filters.action,
                door=filters.door,
                limit=limit,
                before_id=filters.before_id,
            )
        )


@routes.get("/audit", name="audit")
async def audit_log(request: web.Request) -> web.StreamResponse:
    filters = Filters.read(request)
    entries = await _entries(request, filters, PAGE_ROWS + 1)
    zone = request.app[CLOCK].now().tzinfo or dt.UTC
    more = len(entries) > PAGE_ROWS
    shown = entries[:PAGE_ROWS]
    return page(
        request,
        "audit",
        rows=_rows(shown, zone),
        filters=filters,
        actions=ACTIONS,
        doors=DOORS,
        next_before=shown[-1].id if more and shown else None,
    )


@routes.get("/audit.xlsx", name="audit-xlsx")
async def audit_export(request: web.Request) -> web.StreamResponse:
    filters = Filters.read(request)
    entries = await _entries(request, filters, EXPORT_ROWS)
    zone = request.app[CLOCK].now().tzinfo or dt.UTC
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "审计日志"
    header = ("编号", "时间", "操作人", "途径", "来源", "操作", "对象", "变更")
    for column, title in enumerate(header, start=1):
        write_cell(sheet, 1, column, title)
    keys = ("id", "at", "actor", "door", "origin", "action", "object", "change")
    for row_index, row in enumerate(_rows(entries, zone), start=2):
        for column, key in enumerate(keys, start=1):
            write_cell(sheet, row_index, column, row[key])
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    return web.Response(
        body=buffer.getvalue(),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": 'attachment; filename="audit.xlsx"'},
    )
