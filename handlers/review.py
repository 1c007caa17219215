"""Secretaries review their branch's volunteer hours, admins everyone's: `审核`, `通过`, `驳回`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from bot import awards, pushes
from bot.clock import Clock
from bot.router import UsageError
from bot.rules import PointsRules
from bot.settings import Settings
from bot.textforms import bounded_int, parsed, read
from content.texts import render
from data import volunteer
from data.models import Member, ReviewState, Role, VolunteerEntry
from handlers import router

REASON_LIMIT = 200
# Entry ids are PostgreSQL integers (at most 2,147,483,647): nine digits always fit.
ENTRY_ID_DIGITS = 9


def _scope(reviewer: Member) -> int | None:
    """The branch a reviewer sees: their own, or every branch (None) for an admin."""
    return None if reviewer.role == Role.ADMIN.value else reviewer.branch_id


def parse_entry_id(args: str) -> int:
    number = bounded_int(parsed(args).lstrip("#"), ENTRY_ID_DIGITS)
    if number is None:
        raise UsageError("entry_id")
    return number


@dataclass(frozen=True)
class Rejection:
    entry_id: int
    reason: str


def parse_rejection(args: str) -> Rejection:
    # Only the number is normalized: the reason is shown to the member as written.
    reading = read(args)
    number, _, _ = reading.text.partition(" ")
    reason = reading.source_from(len(number)).strip()
    if not reason:
        raise UsageError("reject_reason" if number else "entry_id")
    if len(reason) > REASON_LIMIT:
        raise UsageError("reject_reason_long", most=REASON_LIMIT)
    return Rejection(parse_entry_id(number), reason)


async def _reviewable(
    session: AsyncSession, reviewer: Member, entry_id: int
) -> tuple[VolunteerEntry, Member] | str:
    """The pending entry and its member, or the reply that says why it cannot be reviewed."""
    found = await volunteer.entry_with_member(session, entry_id)
    scope = _scope(reviewer)
    if found is None or (scope is not None and found[1].branch_id != scope):
        return render("review_not_found", entry_id=entry_id)
    entry, owner = found
    if owner.id == reviewer.id:
        return render("review_own", entry_id=entry_id)
    if entry.state != ReviewState.PENDING.value:
        return render("review_done_before", entry=entry)
    return entry, owner


@router.command("审核", usage="审核", summary="查看待审核的志愿服务", role=Role.SECRETARY)
async def pending(member: Member, session: AsyncSession) -> str:
    entries, total = await volunteer.pending(session, _scope(member))
    return render("review_pending", entries=entries, total=total)


@router.command(
    "通过",
    usage="通过 <编号>",
    summary="通过一条志愿服务记录",
    role=Role.SECRETARY,
    parse=parse_entry_id,
)
async def approve(
    args: int,
    member: Member,
    session: AsyncSession,
    clock: Clock,
    settings: Settings,
    rules: PointsRules,
    today: dt.date,
) -> str:
    found = await _reviewable(session, member, args)
    if isinstance(found, str):
        return found
    entry, owner = found
    assert member.id is not None and owner.id is not None and entry.id is not None
    now = clock.now()
    volunteer.decide(entry, ReviewState.APPROVED, member.id, now)
    session.add(entry)
    gained = await awards.for_volunteer(
        session, rules, owner.id, entry.id, entry.minutes, today, now
    )
    notice = render("notice_volunteer_approved", entry=entry, points=gained)
    await pushes.enqueue_review_result(session, settings, clock, owner.id, entry.id, notice)
    return render("review_approved", entry=entry, owner=owner, points=gained)


@router.command(
    "驳回",
    usage="驳回 <编号> <原因>",
    summary="驳回一条志愿服务记录并说明原因",
    role=Role.SECRETARY,
    parse=parse_rejection,
    max_chars=REASON_LIMIT + 20,
)
async def reject(
    args: Rejection, member: Member, session: AsyncSession, clock: Clock, settings: Settings
) -> str:
    found = await _reviewable(session, member, args.entry_id)
    if isinstance(found, str):
        return found
    entry, owner = found
    assert member.id is not None and owner.id is not None
    now = clock.now()
    volunteer.decide(entry, ReviewState.REJECTED, member.id, now, args.reason)
    session.add(entry)
    notice = render("notice_volunteer_rejected", entry=entry)
    assert entry.id is not None
    await pushes.enqueue_review_result(session, settings, clock, owner.id, entry.id, notice)
    return render("review_rejected", entry=entry, owner=owner)
