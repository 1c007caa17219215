"""The console's form for a new activity, read into the `Draft` the chat's one line makes:
each field checked on its own, every problem named by field (the page says it in Chinese).
Times come from `datetime-local` inputs in the configured zone; an activity may cross
midnight, never end before it starts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from multidict import MultiDict, MultiDictProxy

from bot.activities import MINUTES, TEXT_LIMIT, Draft
from bot.textforms import typed
from data.models import ActivityKind, Role

Form = MultiDictProxy[Any] | MultiDict[Any]
CAPACITY = range(1, 100_001)
VOLUNTEER_MINUTES = range(30, 24 * 60 + 1)
ROLES = (Role.MEMBER.value, Role.SECRETARY.value, Role.ADMIN.value)
TIME_CHARS = 19  # 2026-11-26T15:00:00
FIELDS = ("kind", "title", "place", "starts", "ends", "capacity", "volunteer", "role")


class OutOfScope(Exception):
    """The form names a branch that is not there or not the staff member's (a 404)."""


@dataclass
class Reading:
    """What the form said (to show it again) and, when every field is right, the draft."""

    values: dict[str, str]
    branches: tuple[int, ...] = ()
    problems: dict[str, str] = field(default_factory=dict)  # field -> problem
    draft: Draft | None = None


def blank() -> Reading:
    """A new form: every field empty, the audience by branches."""
    return Reading(dict.fromkeys(FIELDS, "") | {"audience": "branches"})


def _text(form: Form, name: str, limit: int) -> str:
    """The field on one line (a title or place has no line breaks), bounded."""
    return " ".join(typed(str(form.get(name, "")))[: limit * 4].split())


def _moment(text: str, zone: dt.tzinfo) -> dt.datetime | None:
    if not text or len(text) > TIME_CHARS or not text.isascii():
        return None
    try:
        found = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return found.replace(tzinfo=zone) if found.tzinfo is None else None


def _whole(text: str, allowed: range) -> int | None:
    if not text.isascii() or not text.isdigit() or len(text) > 7:
        return None
    number = int(text)
    return number if number in allowed else None


def _hours(text: str) -> int | None:
    """Hours as typed (2, 1.5) in minutes, within a volunteer credit's range."""
    if not text.isascii() or len(text) > 6:
        return None
    try:
        hours = Decimal(text)
    except InvalidOperation:
        return None
    if not hours.is_finite():
        return None
    minutes = hours * 60
    if minutes != minutes.to_integral_value() or int(minutes) not in VOLUNTEER_MINUTES:
        return None
    return int(minutes)


def _chosen_branches(form: Form, known: Collection[int]) -> tuple[int, ...]:
    chosen: list[int] = []
    for value in form.getall("branch", []):
        text = str(value)
        if not text.isascii() or not text.isdigit() or len(text) > 12:
            raise OutOfScope()
        if int(text) not in known:
            raise OutOfScope()
        chosen.append(int(text))
    return tuple(sorted(set(chosen)))


def read_form(
    form: Form, *, admin: bool, known: Collection[int], now: dt.datetime, zone: dt.tzinfo
) -> Reading:
    """The draft the form describes, or the problems of its fields. An audience other than
    the secretary's own branch is read for admins only; `OutOfScope` for a branch id that
    is not in `known`."""
    values = {name: _text(form, name, TEXT_LIMIT) for name in FIELDS}
    values["audience"] = "everyone" if form.get("audience") == "everyone" else "branches"
    reading = Reading(values)
    problems = reading.problems
    kinds = {kind.value: kind for kind in ActivityKind}
    kind = kinds.get(values["kind"])
    if kind is None:
        problems["kind"] = "kind"
    for name in ("title", "place"):
        if not values[name]:
            problems[name] = "missing"
        elif len(values[name]) > TEXT_LIMIT:
            problems[name] = "long"
    starts, ends = _moment(values["starts"], zone), _moment(values["ends"], zone)
    if starts is None:
        problems["starts"] = "missing"
    elif starts <= now:
        problems["starts"] = "past"
    if ends is None:
        problems["ends"] = "missing"
    elif starts is not None and ends <= starts:
        problems["ends"] = "before"
    elif starts is not None and (ends - starts) // dt.timedelta(minutes=1) not in MINUTES:
        problems["ends"] = "length"
    capacity = None
    if values["capacity"]:
        capacity = _whole(values["capacity"], CAPACITY)
        if capacity is None:
            problems["capacity"] = "capacity"
    volunteer = None
    if values["volunteer"] and kind is ActivityKind.VOLUNTEER:
        volunteer = _hours(values["volunteer"])
        if volunteer is None:
            problems["volunteer"] = "volunteer"
    everyone, role = False, None
    if admin:
        reading.branches = _chosen_branches(form, known)
        everyone = values["audience"] == "everyone"
        if not everyone and not reading.branches:
            problems["branch"] = "none"
        if values["role"]:
            role = values["role"] if values["role"] in ROLES else None
            if role is None:
                problems["role"] = "role"
    if problems or kind is None or starts is None or ends is None:
        return reading
    minutes = (ends - starts) // dt.timedelta(minutes=1)
    reading.draft = Draft(
        kind,
        starts,
        minutes,
        values["place"],
        values["title"],
        () if everyone else reading.branches,
        everyone,
        role,
        capacity,
        volunteer,
    )
    return reading
