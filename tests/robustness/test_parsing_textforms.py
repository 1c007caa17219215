"""The one normalisation before routing (bot.textforms, Router.match): what is parsed is
NFKC per character with whitespace collapsed; free text keeps its punctuation; invisible and
control characters are gone from both."""

from __future__ import annotations

import pytest

from bot.textforms import bounded_int, parsed, read, typed
from handlers import router


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("学\u200b习", "学习"),
        ("\ufeff学习\u2060", "学习"),
        ("a\u00adb\u034fc\u180ed", "abcd"),
        ("x\x00y\x1bz\x7f", "xyz"),
        ("第一段\r\n第二段\r第三段\u2028", "第一段\n第二段\n第三段"),
        ("  读书，很好！\t", "读书，很好！"),
        ("\ud800半\udfff", "半"),
        ("👍🏽", "👍🏽"),  # skin tones are not invisible
    ],
)
def test_typed_drops_only_what_cannot_be_seen(text: str, expected: str) -> None:
    assert typed(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("１２０　分钟", "120 分钟"),
        ("／学习：３０", "/学习:30"),
        ("a \t\n  b", "a b"),
        ("3\u200b0", "30"),
        ("\u00a0x\u00a0\u00a0y\u00a0", "x y"),
        ("ＡＢＣ", "ABC"),
        ("¨x", "̈x"),  # NFKC gives " ̈": the space at the start goes
    ],
)
def test_parsed_is_nfkc_with_one_space(text: str, expected: str) -> None:
    assert parsed(text) == expected


def test_the_way_back_to_what_was_typed() -> None:
    reading = read("１２０　 读书：《红岩》，好")
    assert reading.text == "120 读书:《红岩》,好"
    assert reading.source_from(3) == "　 读书：《红岩》，好"
    assert reading.source_from(4) == "读书：《红岩》，好"
    assert reading.source_from(len(reading.text)) == ""


@pytest.mark.parametrize(
    ("text", "digits", "expected"),
    [("12", 9, 12), ("0", 9, 0), ("123456789", 9, 123456789), ("1234567890", 9, None)],
)
def test_bounded_int(text: str, digits: int, expected: int | None) -> None:
    assert bounded_int(text, digits) == expected


@pytest.mark.parametrize("text", ["፩", "٣", "²", "1.5", "-1", "+1", " 1", "1_000", "", "1" * 5000])
def test_bounded_int_refuses_anything_else(text: str) -> None:
    assert bounded_int(text, 9) is None


@pytest.mark.parametrize(
    ("text", "word", "args"),
    [
        ("学习 30", "学习", "30"),
        ("／学习：３０ 读书，好", "学习", "３０ 读书，好"),
        ("/ 学习: 30", "学习", "30"),
        ("学\u200b习\u3000４５", "学习", "４５"),
        ("\ufeff笔记 第一段\r\n第二段", "笔记", "第一段\n第二段"),
        ("我的月报", "我的月报", ""),
        ("月报", "我的月报", ""),
        # The longest word first: 签到码 is not 签到 with the argument 码.
        ("签到码 3", "签到码", "3"),
        ("签到 1234", "签到", "1234"),
        ("取消报名 5", "取消报名", "5"),
        ("签到", "签到", ""),
    ],
)
def test_routing_reads_the_word_normalised_and_keeps_the_arguments_as_typed(
    text: str, word: str, args: str
) -> None:
    matched = router.match(text)
    assert matched is not None
    command, found = matched
    assert word in command.names
    assert found == args


def test_every_command_declares_a_length() -> None:
    for command in router.commands:
        assert 0 < command.max_chars <= 10_000, command.name
