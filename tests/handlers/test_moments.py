"""Dates and times as people type them (`handlers.moments.read_moment`)."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.moments import read_moment
from tests.conftest import SHANGHAI

# Wednesday 2026-11-25, 09:00.
NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=SHANGHAI)


def at(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12月5日 15:00", at(12, 5, 15)),
        ("12月5号15:00", at(12, 5, 15)),
        ("12/5 15:00", at(12, 5, 15)),
        ("2027-01-08 9:30", at(1, 8, 9, 30, 2027)),
        ("2027年1月8日 9点半", at(1, 8, 9, 30, 2027)),
        ("十二月五日 下午三点半", at(12, 5, 15, 30)),
        ("明天下午3点", at(11, 26, 15)),
        ("明天 下午 3点", at(11, 26, 15)),
        ("后天上午十点", at(11, 27, 10)),
        ("大后天 8:15", at(11, 28, 8, 15)),
        ("今晚8点", at(11, 25, 20)),
        ("明晚七点一刻", at(11, 26, 19, 15)),
        ("中午12点", at(11, 25, 12)),
        ("中午1点", at(11, 25, 13)),
        ("周五 15:00", at(11, 27, 15)),
        ("星期五下午3点", at(11, 27, 15)),
        ("礼拜天 9点", at(11, 29, 9)),
        ("周三 8:00", at(12, 2, 8)),  # today's 8:00 has gone: next Wednesday
        ("周三 10:00", at(11, 25, 10)),  # later today
        ("下周三晚上七点半", at(12, 2, 19, 30)),
        ("下下周一 9:00", at(12, 7, 9)),
        ("本周一 9:00", at(11, 23, 9)),  # this week's, gone: the caller refuses it
        ("15：00", at(11, 25, 15)),  # a full-width colon
        ("１５:００", at(11, 25, 15)),  # full-width digits
        ("1月8日 9点", at(1, 8, 9, year=2027)),  # long gone this year: next year's
        ("11月20日 9:00", at(11, 20, 9)),  # lately gone: kept, for the caller to refuse
        ("3点45分", at(11, 25, 3, 45)),
        ("14时30分", at(11, 25, 14, 30)),
    ],
)
def test_reads_dates_and_times(text: str, expected: dt.datetime) -> None:
    moment = read_moment(text, NOW)
    assert moment is not None, text
    assert moment.at == expected
    assert moment.rest == ""


def test_returns_what_follows_as_typed() -> None:
    moment = read_moment("12月5日 15:00 90分钟 三楼会议室，学习", NOW)
    assert moment is not None
    assert moment.rest == "90分钟 三楼会议室，学习"


@pytest.mark.parametrize(
    "text",
    ["明天", "三楼会议室", "", "25:00", "13月1日 9:00", "2月30日 9:00", "9:75", "下午", "周八 9点"],
)
def test_refuses_what_is_not_a_moment(text: str) -> None:
    assert read_moment(text, NOW) is None


@given(
    st.datetimes(min_value=dt.datetime(2026, 11, 26), max_value=dt.datetime(2027, 9, 1)).map(
        lambda d: d.replace(second=0, microsecond=0)
    )
)
def test_an_iso_date_and_time_reads_back(moment: dt.datetime) -> None:
    text = moment.strftime("%Y-%m-%d %H:%M")
    found = read_moment(text, NOW)
    assert found is not None
    assert found.at == moment.replace(tzinfo=SHANGHAI)


@given(
    st.dates(min_value=dt.date(2026, 11, 26), max_value=dt.date(2027, 9, 1)),
    st.integers(0, 23),
    st.sampled_from([0, 30]),
)
def test_a_chinese_date_without_year_is_the_coming_one(
    day: dt.date, hour: int, minute: int
) -> None:
    half = "半" if minute else ""
    found = read_moment(f"{day.month}月{day.day}日 {hour}点{half}", NOW)
    assert found is not None
    assert found.at == dt.datetime.combine(day, dt.time(hour, minute), tzinfo=SHANGHAI)


@given(st.text(max_size=200))
def test_any_text_is_read_or_refused_without_error(text: str) -> None:
    found = read_moment(text, NOW)
    assert found is None or found.at.tzinfo is not None


@given(st.sampled_from("一二三四五六日"), st.integers(0, 23))
def test_a_plain_weekday_is_never_in_the_past(weekday: str, hour: int) -> None:
    found = read_moment(f"周{weekday} {hour}:00", NOW)
    assert found is not None
    assert NOW <= found.at < NOW + dt.timedelta(days=7)


def test_reading_time_stays_flat_as_the_text_grows() -> None:
    # A long run of what could start a moment: an anchored, bounded pattern stops early.
    short = "1" * 1_000 + "月"
    long = "1" * 100_000 + "月"

    def timed(text: str) -> float:
        start = time.perf_counter()
        for _ in range(20):
            read_moment(text, NOW)
        return time.perf_counter() - start

    assert read_moment(long, NOW) is None
    assert timed(long) < 50 * timed(short) + 0.5
