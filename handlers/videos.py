"""`微视频`: the latest micro-video — its title, summary and the link to watch it (an
uploaded video's public address: a passive reply cannot wait for an upload to WeChat)."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.settings import Settings
from data.models import ArticleKind, Member
from handlers import router
from handlers.lessons import read_latest


@router.command("微视频", "视频", usage="微视频", summary="观看最新微视频")
async def latest_video(
    member: Member, session: AsyncSession, clock: Clock, settings: Settings
) -> str:
    return await read_latest(member, session, clock, ArticleKind.VIDEO, settings.public_url)
