"""Every text field at its longest, through every command: no apology, nothing cut by the
database (VARCHAR limits are enforced on PostgreSQL, not on SQLite)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlmodel import col, select

from bot.conversation import Conversation
from data import articles, members
from data.db import transaction
from data.members import RosterRow
from data.models import Article, ArticleKind, Member, OutboxItem, Role, VolunteerEntry
from handlers import materials as materials_handler
from handlers import notes, review, study, volunteer
from tests.conftest import Chat

APOLOGY = "抱歉，系统开小差了"


def longest(model: type[Any], column: str) -> int:
    length = model.__table__.c[column].type.length  # type: ignore[attr-defined]
    assert isinstance(length, int)
    return length


def text_of(length: int, char: str = "党") -> str:
    return char * length


async def _add_longest_members(conversation: Conversation) -> tuple[str, str]:
    member_id = "7" * longest(Member, "roster_id")
    secretary_id = "8" * longest(Member, "roster_id")
    name = text_of(longest(Member, "name"), "名")
    branch = text_of(100, "支")
    rows = [
        RosterRow(member_id, name, branch, Role.MEMBER),
        RosterRow(secretary_id, text_of(longest(Member, "name"), "书"), branch, Role.SECRETARY),
    ]
    async with transaction(conversation.sessions) as session:
        await members.upsert_roster(session, rows, conversation.clock.now())
    return member_id, secretary_id


async def _add_longest_lesson(conversation: Conversation) -> None:
    options = {letter: text_of(100, "选") for letter in "ABCDE"}
    lesson = Article(
        slug="x" * longest(Article, "slug"),
        kind=ArticleKind.LESSON.value,
        title=text_of(longest(Article, "title"), "题"),
        summary=text_of(longest(Article, "summary"), "摘"),
        body=text_of(3000, "文"),
        url="https://example.org/" + "a" * (longest(Article, "url") - 20),
        publish_at=conversation.clock.now() - dt.timedelta(minutes=1),
        quiz_question=text_of(longest(Article, "quiz_question"), "问"),
        quiz_options=json.dumps(options, ensure_ascii=False),
        quiz_answer="A",
        quiz_explanation=text_of(longest(Article, "quiz_explanation"), "解"),
    )
    async with transaction(conversation.sessions) as session:
        await articles.upsert(session, [lesson])


async def test_every_command_with_its_longest_input(chat: Chat) -> None:
    conversation = chat.conversation
    member, secretary = await _add_longest_members(conversation)
    await chat.bind(member)
    await chat.bind(secretary)
    await _add_longest_lesson(conversation)
    note = text_of(study.NOTE_LIMIT, "注")
    description = text_of(volunteer.DESCRIPTION_LIMIT, "服")
    reason = text_of(review.REASON_LIMIT, "因")

    said: dict[str, str] = {}
    for text in (
        f"学习 240 {note}",
        f"补卡 240 {note}",
        "今日",
        f"笔记 {text_of(notes.MAX_CHARS, '记')}",
        f"志愿 24 {description}",
        f"志愿 23 {description}",
        "提醒 21:00",
        "积分",
        "排行",
        "我的月报",
        "资讯",
        "微党课",
        "答 A",
        "帮助",
    ):
        said[text[:40]] = await chat.say(member, text)
    async with conversation.sessions() as session:
        entries = (
            await session.exec(select(VolunteerEntry).order_by(col(VolunteerEntry.id)))
        ).all()
    assert [len(entry.description) for entry in entries] == [len(description)] * 2
    first, second = (entry.id for entry in entries)
    for text in (
        "审核",
        f"通过 {first}",
        f"驳回 {second} {reason}",
        f"资料 {text_of(materials_handler.DESCRIPTION_LIMIT, '料')}",
        "资料",
    ):
        said[text[:40]] = await chat.say(secretary, text)

    assert not {command: reply for command, reply in said.items() if APOLOGY in reply}
    assert "已通过" in said[f"通过 {first}"] and "已驳回" in said[f"驳回 {second} {reason}"[:40]]
    async with conversation.sessions() as session:
        results = (await session.exec(select(OutboxItem).where(OutboxItem.kind == "review"))).all()
    assert len(results) == 2
    rejected = next(item for item in results if reason in item.text)
    # The member's next replies carry the results, as many as fit each, the reason whole.
    replies = [await chat.say(member, "今日") for _ in range(2)]
    assert not [reply for reply in replies if APOLOGY in reply]
    assert "已通过审核" in replies[0] and rejected.brief in replies[1]
    assert reason in replies[1]
