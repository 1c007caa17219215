"""The one place that reads the wall clock; everything else receives a `Clock`."""

from __future__ import annotations

import datetime as dt
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    """Tells the current time in the organisation's timezone."""

    @property
    def zone(self) -> ZoneInfo: ...

    def now(self) -> dt.datetime: ...


class SystemClock:
    """The real clock, aware in the configured zone."""

    def __init__(self, zone: ZoneInfo) -> None:
        self._zone = zone

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    def now(self) -> dt.datetime:
        return dt.datetime.now(self._zone)


class FixedClock:
    """A clock for tests and tools: stands still until moved."""

    def __init__(self, at: dt.datetime, zone: ZoneInfo | None = None) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._zone = zone or ZoneInfo("Asia/Shanghai")
        self._at = at.astimezone(self._zone)

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    def now(self) -> dt.datetime:
        return self._at

    def set(self, at: dt.datetime) -> None:
        self._at = at.astimezone(self._zone)

    def advance(self, **delta: float) -> None:
        self._at = self._at + dt.timedelta(**delta)


def today(clock: Clock) -> dt.date:
    """The local calendar day of `clock` in its zone."""
    return clock.now().astimezone(clock.zone).date()


def unix_seconds(clock: Clock) -> int:
    return int(clock.now().timestamp())
