"""周写一文 counts Chinese characters and words, not emoji or symbols: one rule
(`handlers.notes.counted_chars`) for the note's length, the daily 100 and the weekly 800."""

from __future__ import annotations

import pytest
from sqlmodel import select

from data.models import Note, PointsEntry
from handlers.notes import counted_chars
from tests.conftest import Chat
from tests.queries import count


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("学习党章", 4),
        ("学习党章，体会很深！", 8),  # punctuation counts nothing
        ("Python", 1),  # a word of letters is one
        ("2024年", 2),  # a number is one word, 年 one character
        ("5G网络", 3),
        ("学习 Python 和 SQL", 5),
        ("ＡＢＣ与abc", 3),  # full-width letters are a word too
        ("〇", 1),
        ("𠀀𪜀", 2),  # ideographs beyond the basic plane
        ("😀🎉👍" * 10, 0),
        ("★☆→←…——“”《》", 0),
        ("    \n\t", 0),
        ("_下划线_", 3),  # "_" is not a letter
        ("⺀⼀", 0),  # radicals are not ideographs
    ],
)
def test_the_counting_rule(text: str, expected: int) -> None:
    assert counted_chars(text) == expected


async def test_five_thousand_emoji_earn_no_weekly_article(chat: Chat) -> None:
    # The review's finding: 5,000 emoji earned the 800-character bonus. They count nothing,
    # so this is not even a note.
    reply = await chat.say("1001", "笔记 " + "😀" * 5000)
    assert "笔记至少 5 个字" in reply
    assert await count(chat.conversation, Note) == 0
    assert await count(chat.conversation, PointsEntry) == 0


async def test_emoji_around_words_count_only_the_words(chat: Chat) -> None:
    reply = await chat.say(
        "1001", "笔记 " + "今天学习党章" + "👍" * 1000 + "，很有收获！" + "🎉" * 1000
    )
    assert "笔记已保存（10 字）" in reply
    async with chat.conversation.sessions() as session:
        [note] = list(await session.exec(select(Note)))
    assert note.chars == 10
    assert await count(chat.conversation, PointsEntry) == 0


async def test_the_daily_hundred_counts_characters_not_symbols(chat: Chat) -> None:
    # 99 characters and a hundred exclamation marks: no daily note point.
    await chat.say("1001", "笔记 " + "学" * 99 + "！" * 100)
    assert await count(chat.conversation, PointsEntry) == 0
    await chat.say("1001", "笔记 " + "学" * 100)
    assert await count(chat.conversation, PointsEntry, PointsEntry.source == "note") == 1


async def test_the_weekly_article_counts_words_of_letters_and_digits(chat: Chat) -> None:
    # 700 characters and 100 English words: 800, the article.
    reply = await chat.say("1001", "笔记 " + "文" * 700 + " word" * 100)
    assert "笔记已保存（800 字）" in reply
    assert "本周“写一文”已完成！" in reply
    assert await count(chat.conversation, PointsEntry, PointsEntry.source == "article") == 1


async def test_seven_hundred_ninety_nine_is_not_an_article(chat: Chat) -> None:
    reply = await chat.say("1001", "笔记 " + "文" * 799 + "。" * 200 + "💪" * 200)
    assert "笔记已保存（799 字）" in reply
    assert await count(chat.conversation, PointsEntry, PointsEntry.source == "article") == 0
