"""What can happen to a member's standing — binding, unbinding, a role, leaving, the roster
import, invitation codes — as operations every door calls (chat, the CLI, a console to
come), so the notices and audit rows are the same whichever door was used."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from sqlmodel.ext.asyncio.session import AsyncSession

from bot import pushes
from bot.clock import Clock
from bot.messages import Sender
from data import audit, console, invitations, members
from data.audit import Actor
from data.members import RosterImport, RosterRow
from data.models import Binding, Member, Role


class MemberLeft(Exception):
    """The member has left the organisation: nothing may be bound or granted to them."""


def _id(member: Member) -> int:
    assert member.id is not None
    return member.id


def _channels(bindings: Sequence[Binding]) -> list[str]:
    return sorted(binding.channel for binding in bindings)


async def _record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    member: Member,
    at: dt.datetime,
    before: dict[str, object] | None,
    after: dict[str, object] | None,
) -> None:
    await audit.record(
        session,
        actor,
        action,
        object_type="member",
        object_id=member.roster_id,
        branch_id=member.branch_id,
        at=at,
        before=before,
        after=after,
    )


async def bind(
    session: AsyncSession,
    clock: Clock,
    sender: Sender,
    member: Member,
    actor: Actor,
    proof: str | None = None,
) -> Binding:
    """Link the chat account to the member, and tell the member's other accounts at once;
    `proof` names what proved it when it was no proof the member gave (the audit row says).

    `members.AlreadyBound` when the member has an account on this channel or the account a
    member; `MemberLeft` for a member who left.
    """
    if member.left_on is not None:
        raise MemberLeft(member.roster_id)
    now = clock.now()
    existing = _channels(await members.bindings_of_member(session, _id(member)))
    binding = await members.bind(session, sender, member, now)
    assert binding.id is not None
    after: dict[str, object] = {"channels": sorted([*existing, sender.channel])}
    if proof is not None:
        after["proof"] = proof
    await _record(session, actor, "member.bind", member, now, {"channels": existing}, after)
    await pushes.enqueue_binding_notices(
        session, clock, _id(member), binding.id, sender.channel, existing
    )
    return binding


async def bind_vouched(session: AsyncSession, clock: Clock, sender: Sender) -> Member | None:
    """Bind an account whose id the platform vouches is a 工号 (a WeCom UserId: the
    enterprise assigns them) to that member; the member, or None when there is none to bind.

    The enterprise's word stands in for a member's proof, not for a code: secretaries and
    admins bind with an invitation code whatever vouches for them. A member who left, or
    one with another account on this channel already, is not bound.
    """
    target = await members.member_by_roster_id(session, sender.external_id)
    if target is None or target.left_on is not None:
        return None
    if Role(target.role).rank >= Role.SECRETARY.rank:
        return None
    actor = Actor.of_member(target, audit.Door.CHAT, sender.channel)
    try:
        await bind(session, clock, sender, target, actor, proof=f"{sender.channel}-userid")
    except members.AlreadyBound:
        return None
    return target


async def unbind(
    session: AsyncSession,
    actor: Actor,
    member: Member,
    at: dt.datetime,
    channels: Sequence[str] | None = None,
) -> list[str]:
    """End the member's bindings on these channels (all when None); the channels ended."""
    before = await members.bindings_of_member(session, _id(member))
    ended = _channels(await members.remove_bindings(session, _id(member), channels))
    if ended:
        kept = [channel for channel in _channels(before) if channel not in ended]
        await _record(
            session,
            actor,
            "member.unbind",
            member,
            at,
            {"channels": _channels(before)},
            {"channels": kept},
        )
    return ended


async def set_role(
    session: AsyncSession, actor: Actor, member: Member, role: Role, at: dt.datetime
) -> bool:
    """Give the member a role; whether it changed. `MemberLeft` for a member who left."""
    if member.left_on is not None and role is not Role.MEMBER:
        raise MemberLeft(member.roster_id)
    if member.role == role.value:
        return False
    before = member.role
    member.role = role.value
    session.add(member)
    await _record(session, actor, "member.role", member, at, {"role": before}, {"role": role.value})
    if Role(role).rank < Role.SECRETARY.rank:
        # Console sessions end at once, not at their next page (the console checks too).
        await console.end(session, at, "role", member_id=_id(member))
    return True


async def set_branch(
    session: AsyncSession, actor: Actor, member: Member, branch_id: int, at: dt.datetime
) -> bool:
    """Move the member to another branch (their history moves with them); whether it
    changed. The audit row belongs to the new branch and names the old one."""
    if member.branch_id == branch_id:
        return False
    before = {"branch": await members.branch_name(session, member.branch_id)}
    member.branch_id = branch_id
    session.add(member)
    after = {"branch": await members.branch_name(session, branch_id)}
    await _record(session, actor, "member.branch", member, at, before, after)
    return True


async def leave(
    session: AsyncSession, actor: Actor, member: Member, on: dt.date, at: dt.datetime
) -> bool:
    """Mark the member as left on `on`: history kept; role lowered to member, every binding
    ended, the invitation code withdrawn — no pushes, no binding. False if already left."""
    if member.left_on is not None:
        return False
    bindings = _channels(await members.bindings_of_member(session, _id(member)))
    before = {"left_on": None, "role": member.role, "channels": bindings}
    await members.remove_bindings(session, _id(member))
    withdrawn = await invitations.withdraw(session, _id(member), at)
    member.left_on = on
    member.role = Role.MEMBER.value
    session.add(member)
    await console.end(session, at, "left", member_id=_id(member))
    after = {"left_on": on.isoformat(), "role": member.role, "channels": []}
    if withdrawn:
        before["invitation"], after["invitation"] = "issued", "withdrawn"
    await _record(session, actor, "member.leave", member, at, before, after)
    return True


async def undo_leave(session: AsyncSession, actor: Actor, member: Member, at: dt.datetime) -> bool:
    """A member marked left by mistake is a member again (role member; to bind again they
    need a new code). False if they had not left."""
    if member.left_on is None:
        return False
    before = {"left_on": member.left_on.isoformat()}
    member.left_on = None
    session.add(member)
    await _record(session, actor, "member.leave_undo", member, at, before, {"left_on": None})
    return True


async def import_roster(
    session: AsyncSession,
    actor: Actor,
    rows: Sequence[RosterRow],
    at: dt.datetime,
    mark_left_on: dt.date | None = None,
    leaving: Collection[int] | None = None,
) -> RosterImport:
    """Add and update members from a roster file, an audit row per member added or changed;
    with `mark_left_on`, the members the file leaves out are marked left that day (only
    those whose ids are in `leaving`, when given). Nobody is ever deleted."""
    result = await members.upsert_roster(session, rows, at)
    for change in result.changes:
        action = "member.import" if change.before else "member.add"
        await _record(session, actor, action, change.member, at, change.before, change.after)
    if mark_left_on is None:
        return result
    chosen = [m for m in result.absent if leaving is None or _id(m) in leaving]
    for member in chosen:
        await leave(session, actor, member, mark_left_on, at)
    return replace(result, left=chosen)


async def export_roster(
    session: AsyncSession, actor: Actor, branch_id: int | None, at: dt.datetime
) -> list[members.MemberListing]:
    """The roster to hand out (of one branch, or everyone when `branch_id` is None), with
    an audit row saying who took it: it holds every member's name."""
    listing = await members.list_members(session, branch_id)
    await audit.record(
        session,
        actor,
        "roster.export",
        object_type="roster",
        object_id=branch_id if branch_id is not None else "all",
        branch_id=branch_id,
        at=at,
        after={"members": len(listing)},
    )
    return listing


@dataclass(frozen=True)
class Issued:
    roster_id: str
    name: str
    branch: str
    code: str  # in plain: printed once for the member, never stored


async def issue_invitations(
    session: AsyncSession, actor: Actor, chosen: Sequence[tuple[Member, str]], at: dt.datetime
) -> list[Issued]:
    """A new code for each member (replacing any earlier one); audited without the code."""
    issued: list[Issued] = []
    for member, branch in chosen:
        had = await invitations.of_member(session, _id(member))
        before = {"issued_at": had.issued_at.isoformat()} if had else None
        code = await invitations.issue(session, _id(member), at)
        await _record(
            session, actor, "invitation.issue", member, at, before, {"issued_at": at.isoformat()}
        )
        issued.append(Issued(member.roster_id, member.name, branch, code))
    return issued
