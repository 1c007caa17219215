"""The pure amount parser: durations as members type and speak them."""

from __future__ import annotations

from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.amounts import Amount, chinese_number, parse_amount

DIGITS = "零一二三四五六七八九"
FULL_WIDTH_DIGITS = "０１２３４５６７８９"


def write_chinese(n: int, *, liang: bool = False) -> str:
    """`n` (1..9999) as a Chinese numeral the way people write it: 十五, 一百零五, 一千零一十.

    With `liang`, a 2 before 百 or 千 is written 两 (两百四十), as people often say it.
    """
    assert 1 <= n <= 9999
    if 10 <= n < 20:
        # Spoken form without the leading 一: 十, 十五.
        return "十" + (DIGITS[n % 10] if n % 10 else "")
    parts: list[str] = []
    pending_zero = False
    for unit_value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        digit = n // unit_value % 10
        if digit == 0:
            # A zero is written once between non-zero digits, never at the end.
            if parts:
                pending_zero = True
            continue
        if pending_zero:
            parts.append("零")
            pending_zero = False
        spelled = "两" if liang and digit == 2 and unit in ("百", "千") else DIGITS[digit]
        parts.append(spelled + unit)
    return "".join(parts)


def to_full_width(text: str) -> str:
    return "".join(FULL_WIDTH_DIGITS[int(c)] if c.isdigit() else c for c in text)


def test_the_writer_itself() -> None:
    # The writer is test code: pin a few known spellings so the property below means something.
    assert write_chinese(1) == "一"
    assert write_chinese(10) == "十"
    assert write_chinese(15) == "十五"
    assert write_chinese(105) == "一百零五"
    assert write_chinese(110) == "一百一十"
    assert write_chinese(240) == "二百四十"
    assert write_chinese(1001) == "一千零一"
    assert write_chinese(1010) == "一千零一十"
    assert write_chinese(9999) == "九千九百九十九"
    assert write_chinese(240, liang=True) == "两百四十"
    assert write_chinese(2222, liang=True) == "两千两百二十二"


@pytest.mark.parametrize(
    ("text", "bare", "expected"),
    [
        ("30", "minutes", Amount(30, "")),
        ("30分钟", "minutes", Amount(30, "")),
        ("30 分钟", "minutes", Amount(30, "")),
        ("30min", "minutes", Amount(30, "")),
        ("1.5小时", "minutes", Amount(90, "")),
        ("1.5h", "minutes", Amount(90, "")),
        ("一个半小时", "minutes", Amount(90, "")),
        ("半小时", "minutes", Amount(30, "")),
        ("半个小时", "minutes", Amount(30, "")),
        ("两小时", "minutes", Amount(120, "")),
        ("两个小时", "minutes", Amount(120, "")),
        ("三十分钟", "minutes", Amount(30, "")),
        ("１２０", "minutes", Amount(120, "")),
        ("１２０分钟", "minutes", Amount(120, "")),
        ("1小时30分", "minutes", Amount(90, "")),
        ("1小时30分钟", "minutes", Amount(90, "")),
        ("45 读《党章》", "minutes", Amount(45, "读《党章》")),
        ("45，读《党章》", "minutes", Amount(45, "读《党章》")),
        ("1.5小时 学习党史", "minutes", Amount(90, "学习党史")),
        # Volunteering counts a bare number in hours, but an explicit unit wins.
        ("2", "hours", Amount(120, "")),
        ("2 陪老人", "hours", Amount(120, "陪老人")),
        ("1.5 辅导功课", "hours", Amount(90, "辅导功课")),
        ("两 陪老人", "hours", Amount(120, "陪老人")),
        ("30分钟 扫雪", "hours", Amount(30, "扫雪")),
        ("2小时 陪老人", "hours", Amount(120, "陪老人")),
        ("2", "minutes", Amount(2, "")),
    ],
)
def test_examples(text: str, bare: Literal["minutes", "hours"], expected: Amount) -> None:
    assert parse_amount(text, bare=bare) == expected


@pytest.mark.parametrize("text", ["-3", "abc", "", "   ", "分钟", "小时", "读《党章》 45"])
@pytest.mark.parametrize("bare", ["minutes", "hours"])
def test_not_an_amount(text: str, bare: Literal["minutes", "hours"]) -> None:
    assert parse_amount(text, bare=bare) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("十", 10),
        ("十五", 15),
        ("一十五", 15),
        ("二十", 20),
        ("一百零五", 105),
        ("两百四十", 240),
        ("一二〇", 120),
        ("一千零一十", 1010),
        ("三五十", None),
        ("十百", None),
        ("十十", None),
        ("abc", None),
    ],
)
def test_chinese_number_examples(text: str, expected: int | None) -> None:
    assert chinese_number(text) == expected


@given(st.integers(min_value=1, max_value=9999), st.booleans())
def test_chinese_numerals_round_trip(n: int, liang: bool) -> None:
    assert chinese_number(write_chinese(n, liang=liang)) == n


@given(st.integers(min_value=1, max_value=240))
def test_minutes_in_every_spelling(n: int) -> None:
    spellings = [
        f"{n}",
        f"{n}分钟",
        to_full_width(f"{n}"),
        to_full_width(f"{n}分钟"),
        f"{write_chinese(n)}分钟",
        f"{write_chinese(n, liang=True)}分钟",
    ]
    for text in spellings:
        assert parse_amount(text, bare="minutes") == Amount(n, ""), text


@given(st.integers(min_value=1, max_value=240))
def test_minutes_with_a_unit_ignore_the_bare_unit(n: int) -> None:
    # "45分钟" is 45 minutes even where a bare number means hours.
    assert parse_amount(f"{n}分钟", bare="hours") == Amount(n, "")
    assert parse_amount(f"{write_chinese(n)}分钟", bare="hours") == Amount(n, "")


@given(st.integers(min_value=1, max_value=48))
def test_half_hours(h: int) -> None:
    text = f"{h // 2}.5小时" if h % 2 else f"{h // 2}小时"
    assert parse_amount(text, bare="minutes") == Amount(h * 30, "")
    assert parse_amount(text, bare="hours") == Amount(h * 30, "")
    # A bare half-hour amount in volunteer hours means the same.
    bare = f"{h // 2}.5" if h % 2 else f"{h // 2}"
    assert parse_amount(bare, bare="hours") == Amount(h * 30, "")


@pytest.mark.parametrize(
    ("text", "bare", "rest"),
    [
        ("45 读《党章》，很有收获！", "minutes", "读《党章》，很有收获！"),
        ("2 陪老人（体检）", "hours", "陪老人（体检）"),
        ("１２０ 读书：《红岩》", "minutes", "读书：《红岩》"),
    ],
    ids=["note", "description", "full-width-amount"],
)
def test_rest_is_kept_as_typed(text: str, bare: Literal["minutes", "hours"], rest: str) -> None:
    # Full-width forms are normalised to read the amount, but the note or description
    # after it is the member's own text: Chinese punctuation must survive.
    amount = parse_amount(text, bare=bare)
    assert amount is not None
    assert amount.rest == rest
