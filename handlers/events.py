"""Following and unfollowing the account, opening the app."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.messages import InboundKind, Sender
from bot.settings import Settings
from content.texts import render
from data import members
from data.models import Member
from handlers import router


@router.event(InboundKind.SUBSCRIBE)
async def welcome(
    member: Member | None, session: AsyncSession, sender: Sender, settings: Settings
) -> str:
    if member is None:
        return render("welcome", proof=settings.bind_proof)
    await members.mark_reachable(session, sender)
    return render("welcome_back", name=member.name)


@router.event(InboundKind.UNSUBSCRIBE)
async def farewell(session: AsyncSession, sender: Sender) -> str:
    await members.mark_unreachable(session, sender)
    return ""


@router.event(InboundKind.OPENED)
async def opened(member: Member | None, settings: Settings) -> str:
    """Opening the app (WeCom) says nothing to a member: they open it many times a day.
    Someone nobody has bound yet is told how to bind."""
    if member is None:
        return render("bind_prompt", proof=settings.bind_proof)
    return ""
