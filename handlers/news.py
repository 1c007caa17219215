"""`资讯`: the latest micro-news."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from data.models import ArticleKind, Member
from handlers import router
from handlers.lessons import read_latest


@router.command("资讯", "新闻", usage="资讯", summary="阅读最新微资讯")
async def latest_news(member: Member, session: AsyncSession, clock: Clock) -> str:
    return await read_latest(member, session, clock, ArticleKind.NEWS)
