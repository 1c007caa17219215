"""Amounts: what mutation testing of handlers/amounts.py (mutmut) found untested."""

from __future__ import annotations

from typing import Literal

import pytest

from handlers.amounts import Amount, chinese_number, parse_amount


@pytest.mark.parametrize(
    ("text", "bare", "expected"),
    [
        # Units in capitals: the pattern ignores case.
        ("30MIN", "minutes", Amount(30, "")),
        ("1.5H 读书", "minutes", Amount(90, "读书")),
        ("2 Hours", "minutes", Amount(120, "")),
        ("45 Minutes", "hours", Amount(45, "")),
        # A Chinese numeral ends where the numerals end, whatever letter follows.
        ("十x", "minutes", Amount(10, "x")),
        ("二十X光片学习", "minutes", Amount(20, "X光片学习")),
        # Only separators are stripped from the note, never its own letters.
        ("45 X光片判读XX", "minutes", Amount(45, "X光片判读XX")),
        ("45，X", "minutes", Amount(45, "X")),
    ],
)
def test_units_in_any_case_and_the_note_as_typed(
    text: str, bare: Literal["minutes", "hours"], expected: Amount
) -> None:
    assert parse_amount(text, bare=bare) == expected


@pytest.mark.parametrize("text", ["三一十", "五一百", "九一千"])
def test_two_digits_in_a_row_before_a_unit_are_not_a_numeral(text: str) -> None:
    # "一" is a digit like any other here (the check once let only 一 through).
    assert chinese_number(text) is None
