"""Dates and times as people type them: "明天下午3点", "12月5日 15:00", "周五 15:00",
"下周三晚上七点半", "2027-01-08 9:30".

`read_moment` reads one at the start of a text and returns it with the rest. The pattern has
bounded repeats only and is anchored at the start, so reading takes time linear in the text
(in fact constant: it never looks past a few dozen characters).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from bot.textforms import read
from handlers.amounts import chinese_number

_CN = "零〇一二两三四五六七八九十"
_NUM = rf"(?:[0-9]{{1,2}}(?![0-9])|[{_CN}]{{1,3}}(?![{_CN}]))"
_DATE = rf"""
    (?:
        (?:(?P<year>[0-9]{{4}})[年/.-])?
        (?P<month>{_NUM})(?:月|[/.-](?=[0-9]))(?P<day>{_NUM})[日号]?
      | (?P<relative>大后天|后天|明天|今天|明晚|今晚)
      | (?P<week>下下|下个?|本|这个?)?(?:周|星期|礼拜)(?P<weekday>[一二三四五六日天1-7])
    )
"""
_PERIOD = r"(?P<period>凌晨|早上|早晨|上午|中午|下午|傍晚|晚上|夜里)"
_TIME = rf"""
    (?P<hour>{_NUM})
    (?:
        :(?P<minute>[0-9]{{2}})(?![0-9])
      | [点时](?:(?P<half>半)|(?P<quarter>一刻|三刻)|(?P<spoken>{_NUM})分?|整)?
    )
"""
_MOMENT = re.compile(
    rf"(?:{_DATE})?[ ]?(?:{_PERIOD})?[ ]?{_TIME}",
    re.VERBOSE,
)
_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_WEEKDAYS |= {str(number): number - 1 for number in range(1, 8)}
_RELATIVE = {"今天": 0, "今晚": 0, "明天": 1, "明晚": 1, "后天": 2, "大后天": 3}
_AFTERNOON = {"下午", "傍晚", "晚上", "夜里"}
# A date typed without a year is this year's, unless it is this long gone: then next year's
# ("1月8日" typed in December). Closer to today it stays in the past, to be refused.
_NEXT_YEAR_AFTER = dt.timedelta(days=60)


@dataclass(frozen=True)
class Moment:
    at: dt.datetime  # aware, in the zone of the `now` it was read against
    rest: str  # what follows, as typed


def _number(text: str | None) -> int | None:
    if not text:
        return None
    return int(text) if text.isdigit() else chinese_number(text)


def _date(match: re.Match[str], now: dt.datetime) -> dt.date | None:
    today = now.date()
    if match["relative"]:
        return today + dt.timedelta(days=_RELATIVE[match["relative"]])
    if match["weekday"]:
        return _weekday(match["week"] or "", _WEEKDAYS[match["weekday"]], today)
    if not match["month"]:
        return today
    month, day = _number(match["month"]), _number(match["day"])
    if month is None or day is None:
        return None
    year = int(match["year"]) if match["year"] else today.year
    try:
        found = dt.date(year, month, day)
    except ValueError:
        return None
    if not match["year"] and found < today - _NEXT_YEAR_AFTER:
        try:
            found = found.replace(year=year + 1)
        except ValueError:  # 2月29日
            return None
    return found


def _weekday(week: str, weekday: int, today: dt.date) -> dt.date:
    monday = today - dt.timedelta(days=today.weekday())
    if week.startswith("下下"):
        return monday + dt.timedelta(days=14 + weekday)
    if week.startswith("下"):
        return monday + dt.timedelta(days=7 + weekday)
    if week:  # 本周, 这周: this week's, even when gone
        return monday + dt.timedelta(days=weekday)
    ahead = (weekday - today.weekday()) % 7  # the coming one, today included
    return today + dt.timedelta(days=ahead)


def _clock_time(match: re.Match[str]) -> dt.time | None:
    hour = _number(match["hour"])
    if hour is None:
        return None
    if match["minute"]:
        minute = int(match["minute"])
    elif match["half"]:
        minute = 30
    elif match["quarter"]:
        minute = 15 if match["quarter"] == "一刻" else 45
    else:
        minute = _number(match["spoken"]) or 0
    period = match["period"] or ("晚上" if match["relative"] in ("今晚", "明晚") else None)
    if (period in _AFTERNOON and hour < 12) or (period == "中午" and hour < 3):
        hour += 12
    if hour > 23 or minute > 59:
        return None
    return dt.time(hour, minute)


def read_moment(text: str, now: dt.datetime) -> Moment | None:
    """The date and time at the start of `text`, read against `now` (aware), or None.

    No date means today; a weekday alone the coming one (today included), moved a week on
    when that moment has passed today; "下周五" next week's. Past moments are returned as
    read: whether one is allowed is the caller's rule.
    """
    reading = read(text)
    match = _MOMENT.match(reading.text)
    if match is None:
        return None
    day = _date(match, now)
    time = _clock_time(match)
    if day is None or time is None:
        return None
    at = dt.datetime.combine(day, time, tzinfo=now.tzinfo)
    plain_weekday = match["weekday"] and not match["week"]
    if plain_weekday and at < now:
        at += dt.timedelta(days=7)
    return Moment(at, reading.source_from(match.end()).strip())
