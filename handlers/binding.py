"""`绑定`: link this chat account to a roster member, with a proof of who you are.

What proves it is the organisation's choice (QIYI_BIND_PROOF): a one-time invitation code
from the office (`绑定 <工号> <邀请码>`, the default), the name and the last four digits of
the phone in the roster (`phone4`), or the name alone (`name`, trusted small groups only). An
invitation code works in every mode, and it is the only proof for a secretary or an admin.
"""

from __future__ import annotations

import datetime as dt
import hmac
import unicodedata

from sqlmodel.ext.asyncio.session import AsyncSession

from bot import membership
from bot.channel_names import channel_name
from bot.clock import Clock
from bot.messages import Sender
from bot.settings import Settings
from bot.textforms import parsed
from content.texts import render
from data import audit, invitations, members
from data.models import Invitation, Member, Role
from handlers import router

# From one chat account: enough for typing mistakes, too few to search names.
FAILURE_LIMIT = 5
FAILURE_WINDOW = dt.timedelta(minutes=15)
# Against one member, from any number of accounts: 10 wrong proofs within a day lock the
# member's binding until the office issues a new code. A member who mistypes is held up
# by the account limit long before (5 tries, then 15 minutes); an attacker with many
# accounts gets 10 guesses per code issued: 1 in 10 million against a code, 1 in 1000
# against a phone's last 4 digits, and the office learns of it when the member asks.
TARGET_LIMIT = 10
TARGET_WINDOW = dt.timedelta(hours=24)


def parse_bind(args: str) -> list[str]:
    return parsed(args).split()


def _digits(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def _format(settings: Settings) -> str:
    proof = settings.bind_proof
    return render(
        "usage",
        usage=render("bind_usage", proof=proof),
        hint=render("hints/bind_format", proof=proof),
    )


@router.command(
    "绑定",
    usage="绑定 <工号> <邀请码>",
    summary="把本账号绑定到花名册中的本人",
    role=None,
    parse=parse_bind,
)
async def bind(
    args: list[str],
    member: Member | None,
    session: AsyncSession,
    sender: Sender,
    clock: Clock,
    settings: Settings,
) -> str:
    if member is not None:
        return render("bind_already", name=member.name)
    now = clock.now()
    if await members.bind_failures_since(session, sender, now - FAILURE_WINDOW) >= FAILURE_LIMIT:
        return render("bind_throttled", minutes=int(FAILURE_WINDOW.total_seconds() // 60))
    if len(args) < 2:
        return _format(settings)
    roster_id, proof = _digits(args[0]), args[1:]
    code = invitations.normalize_code("".join(proof))
    offered = "code" if code is not None else settings.bind_proof
    shape = {"code": 1, "phone4": 2, "name": 1}[offered]
    if code is None and (settings.bind_proof == "code" or len(proof) != shape):
        return _format(settings)
    target = await members.member_by_roster_id(session, roster_id)
    if target is None:
        await members.record_bind_failure(session, sender, now)
        return render("bind_failed", offered=offered)
    assert target.id is not None
    invitation = await invitations.of_member(session, target.id)
    if target.left_on is not None or invitations.is_locked(invitation):
        await members.record_bind_failure(session, sender, now)
        return render("bind_refused")
    if code is None and Role(target.role).rank >= Role.SECRETARY.rank:
        # Said whether or not the name is right, so it tells nothing about the name.
        await members.record_bind_failure(session, sender, now)
        return render("bind_staff_code")
    if code is not None:
        stored = invitation.code_hash if invitation is not None else invitations.VOID
        proven = invitations.code_matches(code, stored)
        if proven and invitation is not None and invitation.used_at is not None:
            return render("bind_code_used")
    elif offered == "phone4":
        if not target.phone_tail:
            return render("bind_no_phone")
        tail = _digits(proof[1])
        proven = proof[0] == target.name and hmac.compare_digest(tail, target.phone_tail)
    else:
        proven = proof[0] == target.name
    if not proven:
        await _wrong_proof(session, sender, target, invitation, now)
        return render("bind_failed", offered=offered)
    actor = audit.Actor.of_member(target, audit.Door.CHAT, sender.channel)
    try:
        await membership.bind(session, clock, sender, target, actor)
    except members.AlreadyBound:
        return render("bind_taken", channel=channel_name(sender.channel))
    if code is not None and invitation is not None:
        invitations.use(session, invitation, now)
    branch = await members.branch_name(session, target.branch_id)
    return render("bind_done", name=target.name, branch=branch)


async def _wrong_proof(
    session: AsyncSession,
    sender: Sender,
    target: Member,
    invitation: Invitation | None,
    now: dt.datetime,
) -> None:
    """Count the failure against the account and the member; at the member's limit, lock
    the member's binding until the office issues a new code."""
    assert target.id is not None
    await members.record_bind_failure(session, sender, now)
    invitations.record_target_failure(session, target.id, now)
    since = now - TARGET_WINDOW
    if invitation is not None and invitation.issued_at > since:
        since = invitation.issued_at  # a new code starts a new count
    await session.flush()
    if await invitations.target_failures_since(session, target.id, since) < TARGET_LIMIT:
        return
    await invitations.withdraw(session, target.id, now, invitations.LOCKED)
    system = audit.Actor(audit.Door.SYSTEM, "system", sender.channel)
    await audit.record(
        session,
        system,
        "invitation.lock",
        object_type="member",
        object_id=target.roster_id,
        branch_id=target.branch_id,
        at=now,
        before=None,
        after={"locked": f"{TARGET_LIMIT} wrong proofs within {TARGET_WINDOW}"},
    )
