"""The review's edge inputs through the real conversation: a short usage line, never the
apology, and nothing changes (SQLite and PostgreSQL, via the `chat` fixture)."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from content.texts import render
from data.models import Material, Note, PointsEntry, StudyEntry, VolunteerEntry
from tests.conftest import Chat
from tests.queries import count

APOLOGY = render("error")


async def study_minutes(chat: Chat) -> list[int]:
    async with chat.conversation.sessions() as session:
        return [entry.minutes for entry in await session.exec(select(StudyEntry))]


async def pending_entry(chat: Chat) -> int:
    reply = await chat.say("1001", "志愿 2 陪社区老人体检")
    found = re.search(r"编号 (\d+)", reply)
    assert found is not None, reply
    return int(found.group(1))


# --- amounts -------------------------------------------------------------------------------


async def test_a_five_thousand_digit_amount_gets_the_length_limit(chat: Chat) -> None:
    reply = await chat.say("1001", "学习 " + "9" * 5000)
    assert reply != APOLOGY
    assert "用法：学习 <时长> [备注]" in reply
    assert render("hints/too_long", most=240).strip() in reply
    assert await count(chat.conversation, StudyEntry) == 0


@pytest.mark.parametrize("digits", [5, 30, 200])
async def test_an_amount_of_too_many_digits_is_not_understood(chat: Chat, digits: int) -> None:
    # Within the command's length: the amount itself is refused, before any int().
    reply = await chat.say("1001", "学习 " + "9" * digits)
    assert reply != APOLOGY
    assert render("hints/study_amount").strip() in reply
    assert await count(chat.conversation, StudyEntry) == 0


async def test_a_zero_width_space_inside_a_number_is_ignored(chat: Chat) -> None:
    # It was read as 3 minutes with the note "\u200b0".
    reply = await chat.say("1001", "学习 3\u200b0")
    assert "30/120" in reply
    assert await study_minutes(chat) == [30]
    async with chat.conversation.sessions() as session:
        [entry] = list(await session.exec(select(StudyEntry)))
    assert entry.note == ""


@pytest.mark.parametrize(
    "text",
    [
        "学\u200b习 45",
        "\ufeff学习 45",
        "学习\u2060 ４５ 分钟",
        "／学习：\u00a045",
        "学习 4\u200d5\u200c",
    ],
    ids=["inside-the-word", "bom", "word-joiner", "full-width", "joiners"],
)
async def test_invisible_characters_anywhere_are_ignored(chat: Chat, text: str) -> None:
    reply = await chat.say("1001", text)
    assert "45/120" in reply
    assert await study_minutes(chat) == [45]


async def test_two_hundred_spaces_record_the_amount_and_the_note(chat: Chat) -> None:
    # The review's input that took 2.2 s to parse: the amount, then a note after the spaces.
    reply = await chat.say("1001", "学习 1" + " " * 200 + "x")
    assert "1/120" in reply
    async with chat.conversation.sessions() as session:
        [entry] = list(await session.exec(select(StudyEntry)))
    assert (entry.minutes, entry.note) == (1, "x")


# NFKC reads "²" and "①" as 2 and 1: those are amounts. These are digits only to
# `str.isdigit` (and to `int`, for "٣"), not to anyone typing an amount here.
@pytest.mark.parametrize("digit", ["፩", "٣", "٣٠", "፩፪"])
async def test_non_ascii_digits_are_not_an_amount(chat: Chat, digit: str) -> None:
    reply = await chat.say("1001", f"学习 {digit}")
    assert reply != APOLOGY
    assert "用法：学习 <时长> [备注]" in reply
    assert await count(chat.conversation, StudyEntry) == 0


async def test_a_study_note_over_its_limit_is_refused_not_cut(chat: Chat) -> None:
    reply = await chat.say("1001", "学习 30 " + "读" * 201)
    assert render("hints/study_note_long", most=200).strip() in reply
    assert await count(chat.conversation, StudyEntry) == 0
    assert "30/120" in await chat.say("1001", "学习 30 " + "读" * 200)


async def test_volunteer_hours_of_many_digits_are_refused(chat: Chat) -> None:
    reply = await chat.say("1001", "志愿 " + "1" * 25 + " 陪老人")
    assert reply != APOLOGY
    assert "用法：志愿 <小时> <服务内容>" in reply
    assert await count(chat.conversation, VolunteerEntry) == 0


# --- entry numbers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    ["፩", "٣", "1" * 25, "9" * 10, "1" * 5000],
    ids=["ethiopic", "arabic-indic", "25-digits", "10-digits", "5000-digits"],
)
async def test_approve_refuses_what_is_not_an_entry_number(chat: Chat, number: str) -> None:
    entry = await pending_entry(chat)
    reply = await chat.say("1003", f"通过 {number}")
    assert reply != APOLOGY
    assert "用法：通过 <编号>" in reply
    assert await count(chat.conversation, PointsEntry, PointsEntry.source == "volunteer") == 0
    # The real number still works after it.
    assert "已通过" in await chat.say("1003", f"通过 {entry}")


@pytest.mark.parametrize("number", ["፩", "1" * 25])
async def test_reject_refuses_what_is_not_an_entry_number(chat: Chat, number: str) -> None:
    await pending_entry(chat)
    reply = await chat.say("1003", f"驳回 {number} 材料不全")
    assert reply != APOLOGY
    assert "用法：驳回 <编号> <原因>" in reply
    async with chat.conversation.sessions() as session:
        [entry] = list(await session.exec(select(VolunteerEntry)))
    assert entry.state == "pending"


async def test_full_width_entry_numbers_and_a_reason_as_typed(chat: Chat) -> None:
    entry = await pending_entry(chat)
    wide = "".join(chr(ord(digit) + 0xFEE0) for digit in str(entry))
    reply = await chat.say("1003", f"驳回\u3000{wide}\u3000时长请核对，谢谢！")
    assert "已驳回" in reply
    async with chat.conversation.sessions() as session:
        [row] = list(await session.exec(select(VolunteerEntry)))
    assert row.reason == "时长请核对，谢谢！"


# --- other commands ------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["答 ፩", "答 " + "B" * 5000, "提醒 ٢١:٠٠", "提醒 " + "九" * 50])
async def test_other_commands_answer_with_their_usage(chat: Chat, text: str) -> None:
    reply = await chat.say("1001", text)
    assert reply != APOLOGY
    assert "用法：" in reply


async def test_a_reminder_time_in_full_width_digits(chat: Chat) -> None:
    assert "21:30" in await chat.say("1001", "提醒 ２１：３０")


async def test_a_material_description_over_its_limit_is_refused(chat: Chat) -> None:
    reply = await chat.say("1003", "资料 " + "说" * 201)
    assert render("hints/material_description_long", most=200).strip() in reply
    assert await count(chat.conversation, Material) == 0


async def test_a_bare_command_with_five_thousand_characters_gets_the_limit(chat: Chat) -> None:
    reply = await chat.say("1001", "积分 " + "啊" * 5000)
    assert render("hints/too_long", most=100).strip() in reply


async def test_a_note_of_control_characters_only_is_too_short(chat: Chat) -> None:
    reply = await chat.say("1001", "笔记 \x00\x01\u200b\u200b\u200b\ufeff\x7f")
    assert "笔记至少 5 个字" in reply
    assert await count(chat.conversation, Note) == 0


async def test_a_note_keeps_its_punctuation_but_not_invisible_characters(chat: Chat) -> None:
    await chat.say("1001", "笔记 学习\u200b党章，\x00体会很深！\r\n第二段：ＡＢＣ。")
    async with chat.conversation.sessions() as session:
        [note] = list(await session.exec(select(Note)))
    assert note.text == "学习党章，体会很深！\n第二段：ＡＢＣ。"


async def test_a_lone_surrogate_does_not_reach_the_database(chat: Chat) -> None:
    # A JSON body can carry one ("\ud800"); no database stores it.
    reply = await chat.say("1001", "笔记 学习党章\ud800体会很深")
    assert reply != APOLOGY
    async with chat.conversation.sessions() as session:
        [note] = list(await session.exec(select(Note)))
    assert note.text == "学习党章体会很深"
