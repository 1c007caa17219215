"""微党课, 答 and 资讯: published content, the quiz and the reply size limit."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func
from sqlmodel import select

from bot.conversation import Conversation
from bot.messages import TEXT_LIMIT_BYTES
from data import articles
from data.db import transaction
from data.models import (
    Article,
    ArticleKind,
    ArticleRead,
    PointsEntry,
    QuizAnswer,
    VolunteerEntry,
)
from tests.conftest import SHANGHAI, Chat
from tests.queries import count, member_id

NOV_23_LESSON = "【微党课】弘扬志愿服务精神"
NOV_30_LESSON = "【微党课】廉洁自律与中央八项规定精神"


async def quiz_points(conversation: Conversation, roster_id: str) -> int:
    mid = await member_id(conversation, roster_id)
    async with conversation.sessions() as session:
        statement = select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
            PointsEntry.member_id == mid, PointsEntry.source == "quiz"
        )
        return int((await session.exec(statement)).one())


def size(text: str) -> int:
    return len(text.encode("utf-8"))


async def add_article(conversation: Conversation, article: Article) -> None:
    async with transaction(conversation.sessions) as session:
        await articles.upsert(session, [article])


def long_lesson(*, url: str, publish_at: dt.datetime) -> Article:
    return Article(
        slug="lesson-long",
        kind=ArticleKind.LESSON.value,
        title="长篇微党课：新时代党员的担当",
        summary="本课较长，概述新时代党员在岗位上的责任与担当。",
        body="党员要在岗位上发挥先锋模范作用。" * 200,  # far above one reply
        url=url,
        publish_at=publish_at,
        quiz_question="本课的主题是什么？",
        quiz_options=json.dumps({"A": "担当", "B": "休息"}, ensure_ascii=False),
        quiz_answer="A",
        quiz_explanation="本课讲的是担当。",
    )


# --- 微党课 -------------------------------------------------------------------------------


async def test_latest_lesson_with_quiz(chat: Chat) -> None:
    reply = await chat.say("1001", "微党课")

    assert reply.startswith(NOV_23_LESSON)
    assert "“奉献、友爱、互助、进步”是志愿服务精神" in reply  # the summary
    assert "党员参与志愿服务，是践行全心全意为人民服务根本宗旨的具体行动" in reply  # the body
    assert "【随堂测验】中国志愿服务精神的内容是哪一项？" in reply
    for option in (
        "A. 奉献、友爱、互助、进步",
        "B. 团结、奋进、拼搏、奉献",
        "D. 自强、诚信、包容、创新",
    ):
        assert option in reply
    assert "回复“答 A”这样的格式作答" in reply
    # Not yet published on the 25th.
    assert "廉洁自律" not in reply
    assert await count(chat.conversation, ArticleRead) == 1


async def test_alias_and_reading_twice(chat: Chat) -> None:
    assert (await chat.say("1001", "课")).startswith(NOV_23_LESSON)
    assert (await chat.say("1001", "微党课")).startswith(NOV_23_LESSON)
    # The first reading counts; reading again does not add a row.
    assert await count(chat.conversation, ArticleRead) == 1


async def test_next_lesson_once_published(chat: Chat) -> None:
    clock = chat.conversation.clock
    clock.set(dt.datetime(2026, 11, 30, 7, 29, tzinfo=SHANGHAI))
    assert (await chat.say("1001", "微党课")).startswith(NOV_23_LESSON)

    clock.set(dt.datetime(2026, 11, 30, 8, 0, tzinfo=SHANGHAI))
    reply = await chat.say("1001", "微党课")
    assert reply.startswith(NOV_30_LESSON)
    assert "B. 2012年" in reply


async def test_no_lesson_before_any_is_published(chat: Chat) -> None:
    chat.conversation.clock.set(dt.datetime(2026, 10, 15, 9, 0, tzinfo=SHANGHAI))

    assert "暂时还没有发布微党课" in await chat.say("1001", "微党课")
    assert "暂时还没有微资讯" in await chat.say("1001", "资讯")
    assert "目前没有可以作答的测验" in await chat.say("1001", "答 A")
    assert await count(chat.conversation, ArticleRead) == 0
    assert await count(chat.conversation, QuizAnswer) == 0


# --- 答 ------------------------------------------------------------------------------------


async def test_right_answer_scores_once(chat: Chat) -> None:
    conversation = chat.conversation
    await chat.say("1001", "微党课")

    reply = await chat.say("1001", "答 A")
    assert "回答正确！积分 +2" in reply
    assert "解析：志愿服务精神是“奉献、友爱、互助、进步”" in reply
    assert await quiz_points(conversation, "1001") == conversation.rules.points.quiz_correct

    # A second answer, right or wrong, is refused and changes nothing.
    for text in ("答 A", "答 b"):
        again = await chat.say("1001", text)
        assert "《弘扬志愿服务精神》的测验你已作答（你的答案：A）" in again
    assert await quiz_points(conversation, "1001") == 2
    assert await count(conversation, QuizAnswer) == 1


async def test_wrong_first_answer_scores_nothing_and_is_final(chat: Chat) -> None:
    conversation = chat.conversation
    await chat.say("1002", "微党课")

    reply = await chat.say("1002", "答 C")
    assert "回答错误，正确答案是 A" in reply
    assert await quiz_points(conversation, "1002") == 0
    async with conversation.sessions() as session:
        answer = (await session.exec(select(QuizAnswer))).one()
    assert (answer.choice, answer.correct) == ("C", False)

    again = await chat.say("1002", "答 A")
    assert "你的答案：C" in again
    assert await quiz_points(conversation, "1002") == 0
    assert await count(conversation, PointsEntry) == 0


@pytest.mark.parametrize("text", ["答 ａ", "答：a", "/答 A"])
async def test_answer_spellings(chat: Chat, text: str) -> None:
    await chat.say("1001", "微党课")
    assert "回答正确" in await chat.say("1001", text)


async def test_answer_without_reading_answers_nothing(chat: Chat) -> None:
    # The lesson push names the lesson only: its question is shown by 微党课, so a member who
    # has not read it has nothing to answer (and no points to guess at).
    assert "目前没有可以作答的测验。发送“微党课”阅读最新一期" in await chat.say("1001", "答 A")
    assert await count(chat.conversation, QuizAnswer) == 0
    assert await quiz_points(chat.conversation, "1001") == 0


async def test_answer_after_a_lesson_without_quiz_answers_nothing(chat: Chat) -> None:
    """答 answers the lesson last read: not an older one when that one has no quiz."""
    await chat.say("1001", "微党课")  # the 23rd's lesson, with a quiz, not answered
    plain = long_lesson(url="", publish_at=dt.datetime(2026, 11, 25, 8, 0, tzinfo=SHANGHAI))
    plain.slug, plain.quiz_question, plain.quiz_options, plain.quiz_answer = "plain", "", "", ""
    await add_article(chat.conversation, plain)
    assert "【随堂测验】" not in await chat.say("1001", "微党课")

    assert "目前没有可以作答的测验" in await chat.say("1001", "答 A")
    assert await count(chat.conversation, QuizAnswer) == 0


async def test_answer_goes_to_the_lesson_last_read(chat: Chat) -> None:
    clock = chat.conversation.clock
    await chat.say("1001", "微党课")  # the 23rd's lesson (answer A)
    clock.set(dt.datetime(2026, 11, 30, 9, 0, tzinfo=SHANGHAI))
    await chat.say("1001", "微党课")  # the 30th's lesson (answer B)
    assert "回答正确" in await chat.say("1001", "答 B")
    async with chat.conversation.sessions() as session:
        answer = (await session.exec(select(QuizAnswer))).one()
        lesson = await session.get(Article, answer.article_id)
    assert lesson is not None and lesson.slug == "lesson-eight-point-rules"


@pytest.mark.parametrize("text", ["答 X", "答 AB", "答", "答 1", "答 F"])
async def test_invalid_choice_gives_usage(chat: Chat, text: str) -> None:
    await chat.say("1001", "微党课")
    reply = await chat.say("1001", text)

    assert "用法：答 <选项>" in reply
    assert "请回复题目中的一个选项字母" in reply
    assert await count(chat.conversation, QuizAnswer) == 0
    # The invalid try does not use up the answer.
    assert "回答正确" in await chat.say("1001", "答 A")


# --- 资讯 ----------------------------------------------------------------------------------


async def test_latest_news(chat: Chat) -> None:
    reply = await chat.say("1001", "资讯")
    assert reply.startswith("【微资讯】厂安全技能竞赛圆满落幕")
    assert "防冻保温" not in reply  # published on 12-01
    assert (await chat.say("1001", "新闻")) == reply

    chat.conversation.clock.set(dt.datetime(2026, 12, 1, 12, 0, tzinfo=SHANGHAI))
    assert (await chat.say("1001", "资讯")).startswith("【微资讯】党员先锋队开展冬季管线防冻保温")


# --- the reply size limit -----------------------------------------------------------------


async def test_long_lesson_is_shown_as_summary_and_link(chat: Chat) -> None:
    conversation = chat.conversation
    lesson = long_lesson(
        url="https://example.org/lessons/long",
        publish_at=dt.datetime(2026, 11, 24, 8, 0, tzinfo=SHANGHAI),
    )
    assert size(lesson.body) > TEXT_LIMIT_BYTES
    await add_article(conversation, lesson)

    reply = await chat.say("1001", "微党课")

    assert reply.startswith("【微党课】长篇微党课：新时代党员的担当")
    assert "本课较长，概述新时代党员在岗位上的责任与担当。" in reply
    assert "阅读全文：https://example.org/lessons/long" in reply
    assert lesson.body not in reply
    assert "A. 担当" in reply  # the quiz is still there
    assert size(reply) <= TEXT_LIMIT_BYTES


async def test_long_lesson_without_url_is_cut(chat: Chat) -> None:
    lesson = long_lesson(url="", publish_at=dt.datetime(2026, 11, 24, 8, 0, tzinfo=SHANGHAI))
    await add_article(chat.conversation, lesson)

    reply = await chat.say("1001", "微党课")

    assert "……（全文较长，请到支部学习园地阅读）" in reply
    assert "阅读全文" not in reply
    assert size(reply) <= TEXT_LIMIT_BYTES


async def test_long_news_is_shown_as_summary_and_link(chat: Chat) -> None:
    news = Article(
        slug="news-long",
        kind=ArticleKind.NEWS.value,
        title="长篇资讯",
        summary="一段简短的摘要。",
        body="井场安全生产无小事。" * 300,
        url="https://example.org/news/long",
        publish_at=dt.datetime(2026, 11, 25, 8, 0, tzinfo=SHANGHAI),
    )
    await add_article(chat.conversation, news)

    reply = await chat.say("1001", "资讯")

    assert reply.startswith("【微资讯】长篇资讯")
    assert "一段简短的摘要。" in reply
    assert "阅读全文：https://example.org/news/long" in reply
    assert size(reply) <= TEXT_LIMIT_BYTES


async def test_every_reply_fits_even_with_notices_waiting(chat: Chat) -> None:
    conversation = chat.conversation
    await add_article(
        conversation,
        long_lesson(
            url="https://example.org/lessons/long",
            publish_at=dt.datetime(2026, 11, 24, 8, 0, tzinfo=SHANGHAI),
        ),
    )
    # Several review notices wait for 1001, each with a long description.
    for n in range(4):
        reply = await chat.say("1001", f"志愿 2 {'陪社区老人体检并整理健康档案' * 12}{n}")
        assert size(reply) <= TEXT_LIMIT_BYTES
    async with conversation.sessions() as session:
        ids = [e.id for e in await session.exec(select(VolunteerEntry))]
    for entry_id in ids:
        await chat.say("1003", f"通过 {entry_id}")

    replies = [await chat.say("1001", text) for text in ("微党课", "答 A", "资讯", "积分", "帮助")]
    for reply in replies:
        assert size(reply) <= TEXT_LIMIT_BYTES, reply
    # The long lesson still came through, and every notice was delivered in the end.
    assert any("阅读全文：https://example.org/lessons/long" in r for r in replies)
    assert sum(r.count("已通过审核") for r in replies) == len(ids)
