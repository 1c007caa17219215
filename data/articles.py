"""Micro-lessons and micro-news, who read them, and the quiz answers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.db import insert_new
from data.models import Article, ArticleKind, ArticleRead, QuizAnswer


@dataclass(frozen=True)
class Synced:
    added: int
    updated: int
    skipped: list[str]  # slugs of the articles edited in the console, left as they are


# What a file or the console's form sets; the rest (pushed, hidden, edited) is the
# database's own.
EDITABLE = (
    "kind",
    "title",
    "summary",
    "body",
    "url",
    "publish_at",
    "quiz_question",
    "quiz_options",
    "quiz_answer",
    "quiz_explanation",
)
FILE_FIELDS = frozenset({"slug", *EDITABLE})
# Uploaded in the console only (files never set them): kept in versions like the rest.
MEDIA_FIELDS = ("cover", "cover_mime", "video")


async def upsert(session: AsyncSession, articles: Sequence[Article]) -> Synced:
    """Insert or update by slug, except what was edited in the console since."""
    slugs = [article.slug for article in articles]
    known = {
        article.slug: article
        for article in await session.exec(select(Article).where(col(Article.slug).in_(slugs)))
    }
    added = updated = 0
    skipped: list[str] = []
    for incoming in articles:
        current = known.get(incoming.slug)
        if current is None:
            session.add(incoming)
            added += 1
            continue
        if current.edited_at is not None:
            skipped.append(current.slug)
            continue
        for field, value in incoming.model_dump(include=set(FILE_FIELDS)).items():
            setattr(current, field, value)
        session.add(current)
        updated += 1
    return Synced(added, updated, skipped)


def shown() -> ColumnElement[bool]:
    """Published: not taken down in the console."""
    return col(Article.hidden).is_(False)


async def latest(session: AsyncSession, kind: ArticleKind, now: dt.datetime) -> Article | None:
    statement = (
        select(Article)
        .where(Article.kind == kind.value, Article.publish_at <= now, shown())
        .order_by(col(Article.publish_at).desc(), col(Article.id).desc())
        .limit(1)
    )
    return (await session.exec(statement)).first()


async def published_with_media(
    session: AsyncSession, sha256: str, now: dt.datetime, *, video: bool
) -> Article | None:
    """A published article (shown, its time come) whose cover (or, with `video`, whose
    uploaded video) is the file `sha256`; None when no such article is shown to members."""
    column = col(Article.video) if video else col(Article.cover)
    statement = (
        select(Article)
        .where(column == sha256, Article.publish_at <= now, shown())
        .order_by(col(Article.id))
        .limit(1)
    )
    return (await session.exec(statement)).first()


async def of_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, Article]:
    if not ids:
        return {}
    statement = select(Article).where(col(Article.id).in_(sorted(set(ids))))
    return {article.id: article for article in await session.exec(statement) if article.id}


async def mark_read(
    session: AsyncSession, member_id: int, article_id: int, at: dt.datetime
) -> None:
    # Read before: the first reading is the one that counts.
    row = {"member_id": member_id, "article_id": article_id, "read_at": at}
    await insert_new(session, ArticleRead, [row], ["member_id", "article_id"])


async def quiz_in_question(
    session: AsyncSession, member_id: int, now: dt.datetime
) -> Article | None:
    """The quiz `答` answers: the one of the lesson the member last read (`微党课`); None when
    they have read none, or that lesson has no quiz. Never a lesson they have not read: its
    question was not shown to them (the lesson push only names the lesson)."""
    read = (
        select(Article)
        .join(ArticleRead, col(ArticleRead.article_id) == col(Article.id))
        .where(ArticleRead.member_id == member_id, Article.kind == ArticleKind.LESSON.value)
        .order_by(col(ArticleRead.read_at).desc(), col(ArticleRead.id).desc())
        .limit(1)
    )
    article = (await session.exec(read)).first()
    if article is None or not article.quiz_answer or article.publish_at > now:  # withdrawn
        return None
    return article


async def previous_answer(
    session: AsyncSession, member_id: int, article_id: int
) -> QuizAnswer | None:
    statement = select(QuizAnswer).where(
        QuizAnswer.member_id == member_id, QuizAnswer.article_id == article_id
    )
    return (await session.exec(statement)).first()


async def record_answer(
    session: AsyncSession,
    member_id: int,
    article_id: int,
    choice: str,
    correct: bool,
    at: dt.datetime,
) -> bool:
    """Keep the first answer; False when the member had answered already."""
    row = {
        "member_id": member_id,
        "article_id": article_id,
        "choice": choice,
        "correct": correct,
        "answered_at": at,
    }
    return bool(await insert_new(session, QuizAnswer, [row], ["member_id", "article_id"]))


async def take_next_to_push(
    session: AsyncSession, kind: ArticleKind, now: dt.datetime
) -> Article | None:
    """The newest published article not pushed yet, marked pushed (older unpushed ones too:
    a backlog is not pushed day after day; it stays readable with `微党课`/`资讯`)."""
    statement = (
        select(Article)
        .where(
            Article.kind == kind.value,
            Article.publish_at <= now,
            col(Article.pushed_at).is_(None),
            shown(),
        )
        .order_by(col(Article.publish_at).desc(), col(Article.id).desc())
        .with_for_update()
    )
    waiting = list(await session.exec(statement))
    for article in waiting:
        article.pushed_at = now
        session.add(article)
    return waiting[0] if waiting else None


PAGE_SIZE = 30


async def listing(
    session: AsyncSession, kind: ArticleKind | None, page: int
) -> tuple[list[Article], int]:
    """One page of articles, the latest publish time first, and how many there are."""
    statement = select(Article)
    count = select(func.count()).select_from(Article)
    if kind is not None:
        statement = statement.where(Article.kind == kind.value)
        count = count.where(Article.kind == kind.value)
    statement = (
        statement.order_by(col(Article.publish_at).desc(), col(Article.id).desc())
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    )
    total = int((await session.exec(count)).one())
    return list(await session.exec(statement)), total
