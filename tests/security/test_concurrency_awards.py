"""One member's awards are serialised: simultaneous messages of one member respect every cap
and count once (the member's row is locked by the first query of each message)."""

from __future__ import annotations

import asyncio

from sqlmodel import col

from data.models import PointsEntry, QuizAnswer, StudyEntry
from tests.conftest import Chat
from tests.queries import count, ledger, member_id

APOLOGY = "抱歉，系统开小差了"


async def test_twenty_simultaneous_check_ins_respect_the_caps(chat: Chat) -> None:
    replies = await asyncio.gather(*(chat.say("1001", "学习 30") for _ in range(20)))

    assert not [reply for reply in replies if APOLOGY in reply]
    assert all("今日累计" in reply for reply in replies), replies
    entries = await ledger(chat.conversation, "1001")
    by_source: dict[str, int] = {}
    for entry in entries:
        by_source[entry.source] = by_source.get(entry.source, 0) + entry.points
    # 600 minutes: the day's study points stop at the cap (4), the goal bonus comes once.
    assert by_source == {"study": 4, "goal": 2}
    mid = await member_id(chat.conversation, "1001")
    assert await count(chat.conversation, StudyEntry, col(StudyEntry.member_id) == mid) == 20
    # Each reply saw the entries before it: the totals are 30, 60, … 600, each once.
    totals = sorted(int(reply.split("今日累计：")[1].split("/")[0]) for reply in replies)
    assert totals == list(range(30, 601, 30))


async def test_simultaneous_answers_count_once_and_both_are_answered(chat: Chat) -> None:
    await chat.say("1001", "微党课")

    replies = await asyncio.gather(chat.say("1001", "答 A"), chat.say("1001", "答 B"))

    assert not [reply for reply in replies if APOLOGY in reply]
    assert sum("已作答" in reply for reply in replies) == 1, replies
    mid = await member_id(chat.conversation, "1001")
    assert await count(chat.conversation, QuizAnswer, col(QuizAnswer.member_id) == mid) == 1
    quiz_points = [e for e in await ledger(chat.conversation, "1001") if e.source == "quiz"]
    assert len(quiz_points) <= 1
    assert await count(chat.conversation, PointsEntry, col(PointsEntry.source) == "quiz") <= 1
