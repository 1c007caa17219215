"""The guided way to publish an activity: `活动` alone asks for the kind, the time (and
length), the place and the title, one question at a time, then shows a summary to confirm.
`取消` ends it at any step. The answers wait in `data.dialogs` (any process may get the
next message); the published activity is the same as one typed in one line."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.activities import KIND_NAMES, TEXT_LIMIT, Refused, refuse_clash
from bot.clock import Clock
from bot.messages import Inbound, Sender
from bot.router import UsageError
from bot.settings import Settings
from bot.textforms import typed
from content.texts import render
from data import dialogs
from data.models import ActivityKind, Member, Role
from handlers import router
from handlers.activities import DIALOG_STATE, DIALOG_WINDOW, draft_of, publish
from handlers.activity_form import Form, read_kind, read_length
from handlers.moments import read_moment

CANCEL_WORDS = frozenset({"取消", "算了", "退出"})
CONFIRM_WORDS = frozenset({"确认", "确定", "是", "好", "发布"})
TIME_PROBLEMS = frozenset({"activity_past", "activity_clash"})


def _hint(problem: UsageError) -> str:
    return render(f"hints/{problem.hint}", **problem.details)


def _form(data: dict[str, Any], zone: dt.tzinfo) -> Form:
    starts_at = dt.datetime.fromisoformat(data["starts_at"]).astimezone(zone)
    return Form(
        ActivityKind(data["kind"]), starts_at, int(data["minutes"]), data["place"], data["title"]
    )


async def _next(
    session: AsyncSession, member_id: int, data: dict[str, Any], clock: Clock, step: str
) -> None:
    data["step"] = step
    await dialogs.begin(session, member_id, DIALOG_STATE, data, clock.now() + DIALOG_WINDOW)


@router.dialog(DIALOG_STATE, role=Role.SECRETARY)
async def answer(
    inbound: Inbound,
    member: Member,
    session: AsyncSession,
    sender: Sender,
    settings: Settings,
    clock: Clock,
) -> str | None:
    assert member.id is not None
    found = await dialogs.active(session, member.id, clock.now())
    assert found is not None
    data = found[1]
    text = typed(inbound.text)[: TEXT_LIMIT * 2]
    if text in CANCEL_WORDS:
        await dialogs.end(session, member.id)
        return render("activity/dialog_cancelled")
    step = data.get("step")
    if step == "kind":
        kind = read_kind(text)
        if kind is None or kind[1]:
            # Not an answer: the member went on with something else.
            await dialogs.end(session, member.id)
            return None
        data["kind"] = kind[0].value
        await _next(session, member.id, data, clock, "when")
        return render("activity/ask_time", kind=KIND_NAMES[kind[0]])
    if step == "when":
        return await _when(session, member, data, text, clock)
    if step in ("place", "title"):
        if not text or len(text) > TEXT_LIMIT:
            hint = render("hints/activity_text_long", most=TEXT_LIMIT)
            return render("activity/ask_again", hint=hint)
        data[step] = text
        if step == "place":
            await _next(session, member.id, data, clock, "title")
            return render("activity/ask_title")
        await _next(session, member.id, data, clock, "confirm")
        return render("activity/summary", form=_form(data, clock.zone), kinds=KIND_NAMES)
    if text not in CONFIRM_WORDS:
        return render("activity/ask_confirm")
    await dialogs.end(session, member.id)
    try:
        draft = await draft_of(session, _form(data, clock.zone), member)
        return await publish(session, draft, member, sender, settings, clock)
    except UsageError as problem:
        if problem.hint in TIME_PROBLEMS:  # taken or gone by since it was asked: ask again
            await _next(session, member.id, data, clock, "when")
        return render("activity/ask_again", hint=_hint(problem))


async def _when(
    session: AsyncSession, member: Member, data: dict[str, Any], text: str, clock: Clock
) -> str:
    now = clock.now()
    moment = read_moment(text, now)
    if moment is None:
        return render("activity/ask_again", hint=render("hints/activity_time"))
    try:
        minutes, _rest = read_length(moment.rest)
    except UsageError as problem:
        return render("activity/ask_again", hint=_hint(problem))
    if moment.at <= now:
        return render("activity/ask_again", hint=render("hints/activity_past"))
    ends_at = moment.at + dt.timedelta(minutes=minutes)
    try:  # the dialog publishes for the secretary's own branch: a taken time is told now
        await refuse_clash(session, moment.at, ends_at, (member.branch_id,), member, clock.zone)
    except Refused as refused:
        return render("activity/ask_again", hint=refused.answer())
    data["starts_at"], data["minutes"] = moment.at.isoformat(), minutes
    assert member.id is not None
    await _next(session, member.id, data, clock, "place")
    return render("activity/ask_place", starts_at=moment.at, minutes=minutes)
