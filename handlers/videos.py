"""`微视频`: the latest micro-video — its title, summary and the link to watch it."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from content.texts import render
from data import articles
from data.models import ArticleKind, Member
from handlers import router
from handlers.lessons import article_text


@router.command("微视频", "视频", usage="微视频", summary="观看最新微视频")
async def latest_video(member: Member, session: AsyncSession, clock: Clock) -> str:
    assert member.id is not None
    video = await articles.latest(session, ArticleKind.VIDEO, clock.now())
    if video is None or video.id is None:
        return render("video_none")
    await articles.mark_read(session, member.id, video.id, clock.now())
    return article_text("video", video)
