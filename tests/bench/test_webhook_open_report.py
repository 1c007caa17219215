"""bench/webhook.py's options and report for the open loop and the same-work peer."""

from __future__ import annotations

import pytest

from bench.open_loop import OpenLoad
from bench.webhook import CASES, OpenResult, Result, open_rows, open_verdicts, parse_options


def case(key: str):
    return next(c for c in CASES if c.key == key)


def test_open_rates_and_the_peer_case_are_options():
    options = parse_options(["--cases", "b,c2,d-same", "--open-rate", "300, 1000"])
    assert options.open_rates == [300.0, 1000.0]
    assert options.cases == ["b", "c2", "d-same"]
    assert case("d-same").on_werobot and case("d-same").markers["checkin"] == "已记录"


@pytest.mark.parametrize("rates", ["fast", "0", "300,-1", "50000"])
def test_a_bad_open_rate_is_refused(rates: str):
    with pytest.raises(SystemExit):
        parse_options(["--open-rate", rates])


def phase(rate: float, latencies: list[float], scheduled: int) -> OpenResult:
    load = OpenLoad(rate=rate, scheduled=scheduled, replies=len(latencies), seconds=10.0)
    load.errors = scheduled - len(latencies)
    load.samples = [(i / rate, latency) for i, latency in enumerate(latencies)]
    load.lags = [0.001] * scheduled
    return OpenResult(load, server_cpu=5.0)


def test_the_open_table_and_the_goal_at_300():
    fast = phase(300.0, [0.004] * 98 + [0.015, 0.019], 100)
    slow = phase(300.0, [0.004] * 97 + [0.030] * 3, 100)
    result = Result(case("b"), open=[fast])
    other = Result(case("c2"), open=[slow])
    lost = Result(case("b"), open=[phase(1000.0, [0.004] * 90, 100)])

    rows = open_rows([result, other, lost])
    assert rows[0][2:8] == ["300", "10", "4.0", "4.0", "15.0", "19.0"]
    assert rows[0][-2] == "0.50"  # server CPU, in cores over the phase
    # Ten requests without a reply: the slowest tenth has no latency to show.
    assert rows[2][6:8] == ["no reply", "no reply"] and "FAILED" in rows[2][8]

    lines = open_verdicts([result, other, lost])
    assert "p99 15.0 ms (goal ≤ 20 ms): met" in lines[0]
    assert "p99 30.0 ms (goal ≤ 20 ms): MISSED" in lines[1]
    assert "10 errors, FAILED" in lines[2]
