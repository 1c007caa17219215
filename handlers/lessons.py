"""`微党课`/`课`: the latest micro-lesson with its quiz; `答 B` answers the quiz."""

from __future__ import annotations

import datetime as dt

from sqlmodel.ext.asyncio.session import AsyncSession

from bot import awards, content_media
from bot.clock import Clock
from bot.content_editing import options_of
from bot.messages import fits
from bot.router import UsageError
from bot.rules import PointsRules
from bot.textforms import parsed
from content.texts import render
from data import articles
from data.models import Article, ArticleKind, Member
from handlers import router

CHOICES = "ABCDEF"


def article_text(template: str, article: Article, public_url: str | None = None) -> str:
    """The whole article when it fits one reply, else its summary and link (a 微视频's: its
    uploaded video's public address, else its link)."""
    context = {
        "article": article,
        "options": options_of(article),
        "link": content_media.watch_link(public_url, article),
    }
    full = render(template, whole=True, **context)
    if fits(full):
        return full
    return render(template, whole=False, **context)


async def read_latest(
    member: Member,
    session: AsyncSession,
    clock: Clock,
    kind: ArticleKind,
    public_url: str | None = None,
) -> str:
    """The latest published article of `kind`, marked read by the member (templates
    `<kind>` and `<kind>_none`)."""
    assert member.id is not None
    article = await articles.latest(session, kind, clock.now())
    if article is None or article.id is None:
        return render(f"{kind.value}_none")
    await articles.mark_read(session, member.id, article.id, clock.now())
    return article_text(kind.value, article, public_url)


@router.command("微党课", "课", usage="微党课", summary="阅读最新一期微党课并答题")
async def latest_lesson(member: Member, session: AsyncSession, clock: Clock) -> str:
    return await read_latest(member, session, clock, ArticleKind.LESSON)


def parse_choice(args: str) -> str:
    choice = parsed(args).upper()
    if len(choice) != 1 or choice not in CHOICES:
        raise UsageError("quiz_choice")
    return choice


@router.command("答", usage="答 <选项>", summary="回答微党课测验，如：答 B", parse=parse_choice)
async def answer_quiz(
    args: str,
    member: Member,
    session: AsyncSession,
    clock: Clock,
    rules: PointsRules,
    today: dt.date,
) -> str:
    assert member.id is not None
    lesson = await articles.quiz_in_question(session, member.id, clock.now())
    if lesson is None or lesson.id is None:
        return render("quiz_none")
    if args not in options_of(lesson):
        raise UsageError("quiz_choice")
    earlier = await articles.previous_answer(session, member.id, lesson.id)
    if earlier is not None:
        return render("quiz_answered_before", lesson=lesson, earlier=earlier)
    correct = args == lesson.quiz_answer
    await articles.record_answer(session, member.id, lesson.id, args, correct, clock.now())
    gained = 0
    if correct:
        gained = await awards.for_quiz(
            session, rules, member.id, lesson.id, lesson.title, today, clock.now()
        )
    return render("quiz_result", lesson=lesson, correct=correct, points=gained)
