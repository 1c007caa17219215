"""Secretaries review their branch's volunteer hours, admins everyone's: `审核`, `通过`, `驳回` —
one entry or several (`通过 12 13 14`, `通过 全部`, `驳回 12 13 原因`), through the same
operation as the console's 审核 page (`bot.reviews`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from bot import reviews
from bot.clock import Clock
from bot.messages import Sender
from bot.router import UsageError
from bot.rules import PointsRules
from bot.settings import Settings
from bot.textforms import bounded_int, read
from content.texts import render
from data import audit, volunteer
from data.models import Member, Role
from handlers import router

REASON_LIMIT = 200
# Entry ids are PostgreSQL integers (at most 2,147,483,647): nine digits always fit.
ENTRY_ID_DIGITS = 9
EVERY_PENDING = "全部"
_SEPARATORS = str.maketrans({",": " ", "、": " ", ";": " "})


@dataclass(frozen=True)
class Selection:
    """The entries a review names: ids, or every pending one in the reviewer's scope."""

    entry_ids: tuple[int, ...] = ()
    every_pending: bool = False


@dataclass(frozen=True)
class Rejection:
    selection: Selection
    reason: str


def _entry_id(word: str) -> int | None:
    return bounded_int(word.lstrip("#"), ENTRY_ID_DIGITS)


def _leading_ids(text: str) -> tuple[list[int], int]:
    """The entry ids at the start of a parsed text (separated by spaces, commas or 、) and
    where what follows them begins."""
    ids: list[int] = []
    position = 0
    words = text.translate(_SEPARATORS)
    while position < len(words):
        while position < len(words) and words[position] == " ":
            position += 1
        end = words.find(" ", position)
        end = len(words) if end < 0 else end
        number = _entry_id(words[position:end])
        if number is None:
            break
        ids.append(number)
        position = end
    return ids, position


def _selection(ids: list[int]) -> Selection:
    if len(ids) > reviews.MAX_AT_ONCE:
        raise UsageError("entries_too_many", most=reviews.MAX_AT_ONCE)
    return Selection(tuple(ids))


def parse_selection(args: str) -> Selection:
    """`12`, `#12`, `12 13 14`, `12,13、14`, or `全部`."""
    text = read(args).text
    if text == EVERY_PENDING:
        return Selection(every_pending=True)
    ids, end = _leading_ids(text)
    if not ids or text[end:].strip():
        raise UsageError("entry_id")
    return _selection(ids)


def parse_rejection(args: str) -> Rejection:
    """`12 原因` or `12 13 原因`: the ids, then the reason as the reviewer typed it (it is shown
    to the member)."""
    reading = read(args)
    ids, end = _leading_ids(reading.text)
    if not ids:
        raise UsageError("entry_id")
    reason = reading.source_from(end).strip() if end < len(reading.text) else ""
    if not reason:
        raise UsageError("reject_reason")
    if len(reason) > REASON_LIMIT:
        raise UsageError("reject_reason_long", most=REASON_LIMIT)
    return Rejection(_selection(ids), reason)


@router.command("审核", usage="审核", summary="查看待审核的志愿服务", role=Role.SECRETARY)
async def pending(member: Member, session: AsyncSession) -> str:
    entries, total = await volunteer.pending(session, reviews.scope(member))
    return render("review_pending", entries=entries, total=total)


async def _review(
    selection: Selection,
    approve: bool,
    reason: str,
    member: Member,
    session: AsyncSession,
    clock: Clock,
    settings: Settings,
    rules: PointsRules,
    sender: Sender,
) -> str:
    ids = list(selection.entry_ids)
    if selection.every_pending:
        ids = await reviews.waiting_ids(session, member)
        if not ids:
            return render("review_nothing_pending")
    results = await reviews.review(
        session,
        reviewer=member,
        entry_ids=ids,
        approve=approve,
        reason=reason,
        actor=audit.Actor.of_member(member, audit.Door.CHAT, sender.channel),
        settings=settings,
        clock=clock,
        rules=rules,
    )
    if len(results) == 1:
        return _one_result(results[0])
    return render("review_many", results=results, approve=approve, reason=reason)


def _one_result(result: reviews.Reviewed) -> str:
    if result.verdict is reviews.Verdict.APPROVED:
        return render(
            "review_approved", entry=result.entry, owner=result.owner, points=result.points
        )
    if result.verdict is reviews.Verdict.REJECTED:
        return render("review_rejected", entry=result.entry, owner=result.owner)
    if result.verdict is reviews.Verdict.OWN:
        return render("review_own", entry_id=result.entry_id)
    if result.verdict is reviews.Verdict.DONE_BEFORE:
        return render("review_done_before", entry=result.entry)
    return render("review_not_found", entry_id=result.entry_id)


@router.command(
    "通过",
    usage="通过 <编号>（可写多个，或“通过 全部”）",
    summary="通过志愿服务记录：通过 12，通过 12 13 14，或 通过 全部",
    role=Role.SECRETARY,
    parse=parse_selection,
    max_chars=600,
)
async def approve(
    args: Selection,
    member: Member,
    session: AsyncSession,
    clock: Clock,
    settings: Settings,
    rules: PointsRules,
    sender: Sender,
) -> str:
    return await _review(args, True, "", member, session, clock, settings, rules, sender)


@router.command(
    "驳回",
    usage="驳回 <编号> <原因>（可写多个编号）",
    summary="驳回志愿服务记录并说明原因：驳回 12 原因，或 驳回 12 13 原因",
    role=Role.SECRETARY,
    parse=parse_rejection,
    max_chars=REASON_LIMIT + 600,
)
async def reject(
    args: Rejection,
    member: Member,
    session: AsyncSession,
    clock: Clock,
    settings: Settings,
    rules: PointsRules,
    sender: Sender,
) -> str:
    return await _review(
        args.selection, False, args.reason, member, session, clock, settings, rules, sender
    )
