"""Amounts as members type and speak them: "30", "1.5小时", "三十分钟", "一个半小时", "半小时"."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from bot.textforms import read

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4}
_DIGITS |= {"五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000}

_NUMERALS = "零〇一二两三四五六七八九十百千"
# Bounded repeats only, and a number may not run on into more digits: the pattern reads at
# most a few dozen characters whatever follows, so matching takes constant time.
_NUMBER = (
    r"(?:[0-9]{1,4}(?:\.[0-9]{1,2})?(?![0-9]|\.[0-9])"
    rf"|[{_NUMERALS}]{{1,8}}(?![{_NUMERALS}]))"
)
# Whitespace is one space at most here: the text is read in its parsed form (bot.textforms).
_HOURS = r"个?[ ]?(?P<half>半)?[ ]?个?[ ]?(?:小时|钟头|hours?(?![a-z])|hrs?(?![a-z])|h(?![a-z]))"
_MINUTES = r"(?:分钟|分|minutes?(?![a-z])|mins?(?![a-z]))"
_AMOUNT = re.compile(
    rf"""
    (?:
        (?P<hours>{_NUMBER})[ ]?{_HOURS}
        | 半[ ]?个?[ ]?(?P<half_only>小时|钟头)
    )
    (?:[ ]?(?P<extra>{_NUMBER})[ ]?(?:{_MINUTES}|$))?
    | (?P<bare>{_NUMBER})[ ]?(?P<minute_unit>{_MINUTES})?
    """,
    re.VERBOSE | re.IGNORECASE | re.ASCII,
)
_SEPARATORS = " \t\n\u3000,，、:：;；"


@dataclass(frozen=True)
class Amount:
    minutes: int
    rest: str  # what follows the amount: a note, a description


def chinese_number(text: str) -> int | None:
    """Chinese numerals as written: "十五" 15, "一百零五" 105, "两百四十" 240, "一二〇" 120."""
    if not any(char in _UNITS for char in text):
        if not all(char in _DIGITS for char in text):
            return None
        return int("".join(str(_DIGITS[char]) for char in text))
    total, digit, last_unit = 0, None, 10_000
    for char in text:
        if char in _DIGITS:
            if digit is not None and _DIGITS[char] != 0:
                return None  # two digits in a row: "三五十"
            digit = _DIGITS[char] if _DIGITS[char] != 0 else None
        elif char in _UNITS:
            unit = _UNITS[char]
            if unit >= last_unit:
                return None  # "十百", "十十"
            total += (1 if digit is None else digit) * unit
            digit, last_unit = None, unit
        else:
            return None
    return total + (digit or 0)


def _number(text: str) -> Decimal | None:
    if text[0].isdigit():
        return Decimal(text)
    value = chinese_number(text)
    return None if value is None else Decimal(value)


def _whole_minutes(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


def parse_amount(text: str, bare: Literal["minutes", "hours"]) -> Amount | None:
    """The duration at the start of `text` in minutes, or None when it does not start with one.

    A number without a unit counts in `bare` units: minutes for study, hours for volunteering.
    """
    reading = read(text)
    match = _AMOUNT.match(reading.text)
    if match is None:
        return None
    rest = reading.source_from(match.end()).strip(_SEPARATORS).strip()
    if match["half_only"]:
        minutes = Decimal(30)
    elif match["hours"]:
        hours = _number(match["hours"])
        if hours is None:
            return None
        minutes = (hours + (Decimal("0.5") if match["half"] else 0)) * 60
    else:
        value = _number(match["bare"])
        if value is None:
            return None
        in_hours = bare == "hours" and not match["minute_unit"]
        minutes = value * 60 if in_hours else value
    if match["extra"]:
        extra = _number(match["extra"])
        if extra is None:
            return None
        minutes += extra
    return Amount(_whole_minutes(minutes), rest)
