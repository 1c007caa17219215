"""`资料`: secretaries send documents, pictures and videos for the branch's monthly record.

Either `资料 <说明>` first and then the pictures (for the next 10 minutes), or the pictures
first and `资料 <说明>` after them; sent on the day of an activity the sender organises or
that names their branch, they are linked to it (its minutes, its photos). `资料` alone
lists this month's materials (an admin: every branch's count; the console's 资料 page shows
them all).
"""

from __future__ import annotations

import datetime as dt

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.messages import Inbound, InboundKind
from bot.router import UsageError
from bot.textforms import typed
from content.texts import render
from data import activities, dialogs, materials
from data.models import Member, Role
from handlers import router

CAPTION_STATE = "material_caption"
CAPTION_WINDOW = dt.timedelta(minutes=10)
DESCRIPTION_LIMIT = 200
LIST_LIMIT = 20  # materials listed by `资料`: one reply's worth
ONE_DAY = dt.timedelta(days=1)


def parse_description(args: str) -> str:
    description = typed(args)
    if len(description) > DESCRIPTION_LIMIT:
        raise UsageError("material_description_long", most=DESCRIPTION_LIMIT)
    return description


def _may_send(member: Member | None) -> bool:
    return member is not None and Role(member.role).rank >= Role.SECRETARY.rank


async def _record(
    session: AsyncSession,
    member: Member,
    inbound: Inbound,
    description: str,
    today: dt.date,
    now: dt.datetime,
) -> str:
    assert member.id is not None
    channel = inbound.sender.channel
    start = dt.datetime.combine(today, dt.time(), now.tzinfo)
    activity = await activities.recorded_by(session, member, start, start + ONE_DAY, now)
    await materials.add(
        session,
        member.branch_id,
        member.id,
        channel,
        inbound.media,
        description,
        today,
        now,
        activity.id if activity else None,
    )
    month = await materials.count_of_branch(session, member.branch_id, today.replace(day=1), today)
    return render(
        "material_saved",
        count=len(inbound.media),
        description=description,
        month_count=month,
        activity=activity,
    )


@router.event(InboundKind.MEDIA)
async def receive_media(
    member: Member | None,
    session: AsyncSession,
    inbound: Inbound,
    clock: Clock,
    today: dt.date,
) -> str:
    if member is None:
        return render("bind_prompt")
    if not _may_send(member):
        return render("unsupported")
    assert member.id is not None
    now = clock.now()
    caption = await dialogs.current(session, member.id, CAPTION_STATE, now)
    description = str(caption["description"]) if caption else ""
    return await _record(session, member, inbound, description, today, now)


@router.command(
    "资料",
    usage="资料 [说明]",
    summary="报送支部资料：发“资料 说明”后发图片或视频（也可先发图片后补说明）；只发“资料”查看本月",
    role=Role.SECRETARY,
    parse=parse_description,
    max_chars=DESCRIPTION_LIMIT + 20,
)
async def material_caption(
    args: str,
    member: Member,
    session: AsyncSession,
    inbound: Inbound,
    clock: Clock,
    today: dt.date,
) -> str:
    assert member.id is not None
    now = clock.now()
    description = args
    if inbound.media:  # text and pictures in one message (QQ)
        return await _record(session, member, inbound, description, today, now)
    if not description and member.role == Role.ADMIN.value:
        counts = await materials.counts_by_branch(session, today.replace(day=1), today)
        return render("material_counts", counts=counts, month=today.month)
    if not description:
        first = today.replace(day=1)
        found = await materials.of_branch(session, member.branch_id, first, today, LIST_LIMIT)
        total = len(found)
        if total == LIST_LIMIT:
            total = await materials.count_of_branch(session, member.branch_id, first, today)
        return render("material_list", materials=found, total=total, month=today.month)
    described = await materials.describe_recent(
        session, member.id, now - CAPTION_WINDOW, description
    )
    if described:
        return render("material_described", count=described, description=description)
    await dialogs.begin(
        session, member.id, CAPTION_STATE, {"description": description}, now + CAPTION_WINDOW
    )
    return render("material_waiting", description=description, minutes=10)
