"""Amounts as members type and speak them: "30", "1.5小时", "三十分钟", "一个半小时", "半小时"."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4}
_DIGITS |= {"五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000}

_NUMBER = r"\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百千]+"
_HOURS = (
    r"(?:个)?\s*(?P<half>半)?\s*(?:个)?\s*(?:小时|钟头|hours?(?![a-z])|hrs?(?![a-z])|h(?![a-z]))"
)
_MINUTES = r"(?:分钟|分|minutes?(?![a-z])|mins?(?![a-z]))"
_AMOUNT = re.compile(
    rf"""
    (?:
        (?P<hours>{_NUMBER})\s*{_HOURS}
        | 半\s*(?:个)?\s*(?P<half_only>小时|钟头)
    )
    (?:\s*(?P<extra>{_NUMBER})\s*(?:{_MINUTES}|$))?
    | (?P<bare>{_NUMBER})\s*(?P<minute_unit>{_MINUTES})?
    """,
    re.VERBOSE | re.IGNORECASE,
)
_SEPARATORS = " \t\u3000,，、:：;；"


@dataclass(frozen=True)
class Amount:
    minutes: int
    rest: str  # what follows the amount: a note, a description


def normalize(text: str) -> str:
    """Full-width digits, letters, spaces and colons to their ASCII forms."""
    return unicodedata.normalize("NFKC", text).strip()


def _normalized_with_origins(text: str) -> tuple[str, list[int]]:
    """`text` normalized char by char, and for each normalized position its original index,
    so the words after an amount are taken from what the member typed, punctuation intact."""
    pieces: list[str] = []
    origins: list[int] = []
    for index, char in enumerate(text):
        piece = unicodedata.normalize("NFKC", char)
        pieces.append(piece)
        origins.extend([index] * len(piece))
    origins.append(len(text))
    return "".join(pieces), origins


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
    original = text.strip()
    text, origins = _normalized_with_origins(original)
    match = _AMOUNT.match(text)
    if match is None:
        return None
    rest = original[origins[match.end()] :].strip().strip(_SEPARATORS).strip()
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
