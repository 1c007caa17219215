"""An activity in one line, as an organiser types it:

    活动 主题党日 12月5日 15:00 90分钟 三楼会议室 学习新修订的条例

the kind, the date and time, the length (optional: an hour), then options, the place and the
title. Options (an admin's audience; anyone's capacity; a 志愿活动's hours) are words of
their own anywhere after the time: `名额30` (open sign-up for 30), `对象:全体`,
`对象:书记`, `对象:第一党支部、第二党支部`, `志愿2小时`. Each step reads a bounded prefix,
so the whole line is read in linear time.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from bot.activities import KIND_WORDS, MINUTES, TEXT_LIMIT
from bot.router import UsageError
from bot.textforms import read, typed
from data.models import ActivityKind, Role
from handlers.amounts import parse_amount
from handlers.moments import read_moment

DEFAULT_MINUTES = 60
CAPACITY = range(1, 100_001)
BRANCH_NAMES_LIMIT = 20
_CAPACITY = re.compile(r"(?:名额|限)[:：]?([0-9]{1,7})人?")
_AUDIENCE = re.compile(r"对象[:：](.{1,400})")
_VOLUNTEER = re.compile(r"志愿[:：]?(.{1,20})")
_ROLES = {"书记": Role.SECRETARY.value, "党员": Role.MEMBER.value, "管理员": Role.ADMIN.value}
_LIST_SEPARATORS = re.compile(r"[、,，;；]")
_LENGTH_UNIT = re.compile(r"[0-9一二两三四五六七八九十半.]{1,6}[ ]?个?半?[ ]?(?:分钟|小时|钟头)")


@dataclass(frozen=True)
class Form:
    """What the line says; branch names are resolved by the handler."""

    kind: ActivityKind
    starts_at: dt.datetime
    minutes: int
    place: str
    title: str
    everyone: bool = False
    branch_names: tuple[str, ...] = ()
    role: str | None = None
    capacity: int | None = None
    volunteer_minutes: int | None = None


def read_kind(text: str) -> tuple[ActivityKind, str] | None:
    """The kind at the start of `text` (its longest name that fits) and the rest."""
    for word in sorted(KIND_WORDS, key=len, reverse=True):
        if text.startswith(word):
            return KIND_WORDS[word], text[len(word) :].strip()
    return None


def read_length(text: str) -> tuple[int, str]:
    """An activity's length at the start of `text` (minutes, or hours with a unit), else the
    default hour; `UsageError` for a length out of range."""
    amount = parse_amount(text, bare="minutes")
    if amount is None or not _has_unit(text):
        return DEFAULT_MINUTES, text
    if amount.minutes not in MINUTES:
        raise UsageError("activity_length", least=MINUTES[0], most=MINUTES[-1] // 60)
    return amount.minutes, amount.rest


def _has_unit(text: str) -> bool:
    # A bare number is not a length here: "3" could be a room; "90分钟", "2小时" are.
    head = read(text[:12]).text
    return bool(_LENGTH_UNIT.match(head))


def _option(word: str, form: dict[str, object]) -> bool:
    """Read an option word into `form`; False when the word is not one."""
    parsed = read(word).text
    if match := _CAPACITY.fullmatch(parsed):
        capacity = int(match[1])
        if capacity not in CAPACITY:
            raise UsageError("activity_capacity")
        form["capacity"] = capacity
        return True
    if match := _AUDIENCE.fullmatch(word):
        _audience(match[1].strip(), form)
        return True
    if match := _VOLUNTEER.fullmatch(parsed):
        amount = parse_amount(match[1], bare="hours")
        if amount is None or amount.rest or amount.minutes not in range(30, 24 * 60 + 1):
            raise UsageError("volunteer_range")
        form["volunteer_minutes"] = amount.minutes
        return True
    return False


def _audience(value: str, form: dict[str, object]) -> None:
    if value == "全体":
        form["everyone"] = True
    elif value in _ROLES:
        form["everyone"] = True
        form["role"] = _ROLES[value]
    else:
        names = tuple(n.strip() for n in _LIST_SEPARATORS.split(value) if n.strip())
        if not names or len(names) > BRANCH_NAMES_LIMIT:
            raise UsageError("activity_audience")
        form["branch_names"] = names


def parse_form(text: str, now: dt.datetime) -> Form:
    """The activity the line describes; `UsageError` naming the first thing that is wrong."""
    text = typed(text)
    kind = read_kind(text)
    if kind is None:
        raise UsageError("activity_kind")
    moment = read_moment(kind[1], now)
    if moment is None:
        raise UsageError("activity_time")
    minutes, rest = read_length(moment.rest)
    form: dict[str, object] = {}
    words = rest.split()
    while words and _option(words[0], form):
        words.pop(0)
    if not words:
        raise UsageError("activity_place")
    place = words.pop(0)
    while words and _option(words[0], form):
        words.pop(0)
    title = " ".join(words)
    if not title:
        raise UsageError("activity_title")
    if len(place) > TEXT_LIMIT or len(title) > TEXT_LIMIT:
        raise UsageError("activity_text_long", most=TEXT_LIMIT)
    return Form(kind[0], moment.at, minutes, place, title, **form)  # type: ignore[arg-type]
