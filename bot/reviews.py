"""Reviewing volunteer hours — one entry or many — as one operation every door calls (`通过`,
`驳回` in chat, the console's 审核 page): points, the member's notice through the outbox and
the audit row are the same whichever door was used."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlmodel.ext.asyncio.session import AsyncSession

from bot import awards, pushes
from bot.clock import Clock, today
from bot.rules import PointsRules
from bot.settings import Settings
from content.texts import render
from data import audit, volunteer
from data.models import Member, ReviewState, Role, VolunteerEntry

MAX_AT_ONCE = 50  # entries in one review: `通过 全部` takes the oldest this many


class Verdict(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    NOT_FOUND = "not_found"  # no such entry, or another branch's (the same answer)
    OWN = "own"  # nobody reviews their own entry
    DONE_BEFORE = "done_before"  # reviewed already


@dataclass(frozen=True)
class Reviewed:
    entry_id: int
    verdict: Verdict
    entry: VolunteerEntry | None = None
    owner: Member | None = None
    points: int = 0

    @property
    def done(self) -> bool:
        return self.verdict in (Verdict.APPROVED, Verdict.REJECTED)


def scope(reviewer: Member) -> int | None:
    """The branch a reviewer sees: their own, or every branch (None) for an admin."""
    return None if reviewer.role == Role.ADMIN.value else reviewer.branch_id


async def waiting_ids(session: AsyncSession, reviewer: Member) -> list[int]:
    """The oldest pending entries the reviewer may review (not their own), for `通过 全部`."""
    assert reviewer.id is not None
    return await volunteer.pending_ids(session, scope(reviewer), reviewer.id, MAX_AT_ONCE)


async def review(
    session: AsyncSession,
    *,
    reviewer: Member,
    entry_ids: Sequence[int],
    approve: bool,
    reason: str,
    actor: audit.Actor,
    settings: Settings,
    clock: Clock,
    rules: PointsRules,
) -> list[Reviewed]:
    """Approve (awarding points) or reject (with `reason`) each entry the reviewer may
    review, in the caller's transaction; one `Reviewed` per distinct id, in order."""
    assert reviewer.id is not None
    results: list[Reviewed] = []
    for entry_id in dict.fromkeys(entry_ids):
        results.append(
            await _one(session, reviewer, entry_id, approve, reason, actor, settings, clock, rules)
        )
    return results


async def _one(
    session: AsyncSession,
    reviewer: Member,
    entry_id: int,
    approve: bool,
    reason: str,
    actor: audit.Actor,
    settings: Settings,
    clock: Clock,
    rules: PointsRules,
) -> Reviewed:
    found = await volunteer.entry_with_member(session, entry_id)
    limit = scope(reviewer)
    if found is None or (limit is not None and found[1].branch_id != limit):
        return Reviewed(entry_id, Verdict.NOT_FOUND)
    entry, owner = found
    if owner.id == reviewer.id:
        return Reviewed(entry_id, Verdict.OWN, entry, owner)
    if entry.state != ReviewState.PENDING.value:
        return Reviewed(entry_id, Verdict.DONE_BEFORE, entry, owner)
    assert reviewer.id is not None and owner.id is not None and entry.id is not None
    now = clock.now()
    state = ReviewState.APPROVED if approve else ReviewState.REJECTED
    volunteer.decide(entry, state, reviewer.id, now, "" if approve else reason)
    session.add(entry)
    gained = 0
    if approve:
        gained = await awards.for_volunteer(
            session, rules, owner.id, entry.id, entry.minutes, today(clock), now
        )
        notice = render("notice_volunteer_approved", entry=entry, points=gained)
    else:
        notice = render("notice_volunteer_rejected", entry=entry)
    await pushes.enqueue_review_result(session, settings, clock, owner.id, entry.id, notice)
    after: dict[str, object] = {"state": state.value}
    after.update({"points": gained} if approve else {"reason": reason})
    await audit.record(
        session,
        actor,
        "volunteer.approve" if approve else "volunteer.reject",
        object_type="volunteer",
        object_id=entry.id,
        branch_id=owner.branch_id,
        at=now,
        before={"state": ReviewState.PENDING.value, "member": owner.roster_id},
        after=after,
    )
    verdict = Verdict.APPROVED if approve else Verdict.REJECTED
    return Reviewed(entry_id, verdict, entry, owner, gained)
