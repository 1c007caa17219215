"""`解绑`: end a chat binding — a member their own, a secretary their branch's, an admin
anyone's (`bot.membership.unbind`, the same operation as `qiyi members unbind`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from bot import membership
from bot.channel_names import channel_name, channels_named
from bot.clock import Clock
from bot.messages import Sender
from bot.router import UsageError
from content.texts import render
from data import audit, members
from data.models import Member, Role
from handlers import router


@dataclass(frozen=True)
class UnbindArgs:
    roster_id: str | None  # None: the member's own account
    channels: tuple[str, ...] | None  # None: every channel (staff unbinding a member)
    channel_text: str  # the channel as typed, for the answer


def parse_unbind(args: str) -> UnbindArgs:
    parts = args.split()
    if not parts or len(parts) > 2:
        raise UsageError("unbind_format")
    own = channels_named(parts[0])
    if own is not None:
        if len(parts) != 1:
            raise UsageError("unbind_format")
        return UnbindArgs(None, own, parts[0])
    channels = channels_named(parts[1]) if len(parts) == 2 else None
    if len(parts) == 2 and channels is None:
        raise UsageError("unbind_format")
    return UnbindArgs(parts[0], channels, parts[1] if len(parts) == 2 else "")


def _may_unbind(staff: Member, target: Member | None) -> bool:
    """An admin: anyone; a secretary: their own branch's members and secretaries."""
    if target is None:
        return False
    if staff.role == Role.ADMIN.value:
        return True
    return (
        staff.role == Role.SECRETARY.value
        and target.branch_id == staff.branch_id
        and target.role != Role.ADMIN.value
    )


@router.command(
    "解绑",
    usage="解绑 <渠道>",
    summary="解除本人在某渠道（微信、QQ）上的绑定；书记、管理员：解绑 <工号> [渠道]",
    parse=parse_unbind,
)
async def unbind(
    args: UnbindArgs, member: Member, session: AsyncSession, sender: Sender, clock: Clock
) -> str:
    actor = audit.Actor.of_member(member, audit.Door.CHAT, sender.channel)
    now = clock.now()
    if args.roster_id is None:
        ended = await membership.unbind(session, actor, member, now, args.channels)
        if not ended:
            return render("unbind_none", name="", roster_id="", channel=args.channel_text)
        return render("unbind_done", name="", roster_id="", channels=_names(ended))
    if Role(member.role).rank < Role.SECRETARY.rank:
        raise UsageError("unbind_format")  # a member names a channel, not a 工号
    target = await members.member_by_roster_id(session, args.roster_id)
    if target is None or not _may_unbind(member, target):
        # Another branch's member is answered like one who does not exist: nothing leaks.
        return render("unbind_not_found", roster_id=args.roster_id)
    ended = await membership.unbind(session, actor, target, now, args.channels)
    if not ended:
        channel = args.channel_text or "任何渠道"
        return render("unbind_none", name=target.name, roster_id=target.roster_id, channel=channel)
    return render(
        "unbind_done", name=target.name, roster_id=target.roster_id, channels=_names(ended)
    )


def _names(channels: list[str]) -> list[str]:
    return [channel_name(channel) for channel in channels]
