"""`资讯`: the latest micro-news."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from content.texts import render
from data import articles
from data.models import ArticleKind, Member
from handlers import router
from handlers.lessons import article_text


@router.command("资讯", "新闻", usage="资讯", summary="阅读最新微资讯")
async def latest_news(member: Member, session: AsyncSession, clock: Clock) -> str:
    assert member.id is not None
    item = await articles.latest(session, ArticleKind.NEWS, clock.now())
    if item is None or item.id is None:
        return render("news_none")
    await articles.mark_read(session, member.id, item.id, clock.now())
    return article_text("news", item)
