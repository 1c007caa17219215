"""Parsing time grows linearly with the input, for every parser on the message path.

No timed assertions: for each parser and each known adversarial family of inputs (runs of
spaces, commas, digits, half-/full-width mixes, zero-width characters …) the time is measured
at a ladder of sizes in the same run, and compared as ratios. Linear growth makes the ratio
of two consecutive sizes about their size ratio (≤ 2.5 here) and t(5,000)/t(500) about 10;
the old amount pattern grew as the fourth power (16× per doubling, ~10,000× over the ten-fold
step) and the old CQ-code pattern exponentially. The ladder stops at the first step that
grows too fast, so a catastrophic parser fails in milliseconds instead of hanging the run.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import timeit
from collections.abc import Callable
from typing import Any

import pytest

from bot.channels.onebot_message import parse_cq, read
from bot.channels.wechat_envelope import parse_xml
from bot.router import UsageError
from bot.textforms import read as read_text
from handlers import router
from handlers.amounts import parse_amount
from handlers.notes import counted_chars

SIZES = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
STEP_BOUND = 12.0  # per step of ≤ 2.5× the size: linear ≈ 2.5, quartic 16 to 39
TENFOLD_BOUND = 40.0  # t(5,000) / t(500): linear ≈ 10, quadratic 100
MIN_ROUNDS, MAX_ROUNDS = 3, 30
MEASUREMENT_SECONDS = 5e-4


def _calibrated(call: Callable[[], Any]) -> int:
    """How many calls make one measurement long enough to be measured."""
    once = timeit.timeit(call, number=1)
    return max(1, min(10_000, math.ceil(MEASUREMENT_SECONDS / max(once, 1e-8))))


def growth(small: Callable[[], Any], large: Callable[[], Any], bound: float) -> float:
    """time(large) / time(small), each the best of several rounds.

    The two are measured in turn, so a burst of load on this shared machine falls on both
    alike; and while the ratio is above `bound`, more rounds are measured (up to
    MAX_ROUNDS), since the best of a few can all have been interrupted on a busy machine.
    A parser that really grows too fast stays above the bound in every round.
    """
    counts = (_calibrated(small), _calibrated(large))
    best = [math.inf, math.inf]
    for round_number in range(1, MAX_ROUNDS + 1):
        for index, call in enumerate((small, large)):
            elapsed = timeit.timeit(call, number=counts[index])
            best[index] = min(best[index], elapsed / counts[index])
        if round_number >= MIN_ROUNDS and best[1] / best[0] < bound:
            break
    return best[1] / best[0]


def assert_linear(parse: Callable[[str], Any], family: Callable[[int], str]) -> None:
    def attempt(size: int) -> Callable[[], None]:
        text = family(size)

        def call() -> None:
            with contextlib.suppress(UsageError):
                parse(text)

        return call

    for smaller, size in itertools.pairwise(SIZES):
        ratio = growth(attempt(smaller), attempt(size), STEP_BOUND)
        assert ratio < STEP_BOUND, f"{smaller}→{size} characters: ×{ratio:.1f}"
    ratio = growth(attempt(500), attempt(5000), TENFOLD_BOUND)
    assert ratio < TENFOLD_BOUND, f"500→5,000 characters: ×{ratio:.1f}"


# Families of adversarial inputs: each a function of the size in characters.
FAMILIES: dict[str, Callable[[int], str]] = {
    "spaces": lambda n: "1" + " " * n + "x",
    "spaces-before-unit": lambda n: "1" + " " * n + "小时",
    "full-width-spaces": lambda n: "１" + "\u3000" * n + "ｘ",
    "commas": lambda n: "1" + "," * n + "x",
    "full-width-commas": lambda n: "1" + "，" * n,
    "digits": lambda n: "1" * n,
    "full-width-digits": lambda n: "１" * n,
    "half-full-mix": lambda n: ("1 １　" * n)[:n],
    "chinese-numerals": lambda n: "一" * n + "小时",
    "zero-width": lambda n: "3" + "\u200b" * n + "0",
    "units": lambda n: ("1小时" * n)[:n],
    "hash-and-colon": lambda n: ("#:：" * n)[:n],
}

PARSERS: dict[str, Callable[[str], Any]] = {}
for command in router.commands:
    if command.parse is not None:
        PARSERS.setdefault(command.parse.__qualname__, command.parse)


@pytest.mark.parametrize("family", FAMILIES, ids=str)
@pytest.mark.parametrize("parser", PARSERS, ids=str)
def test_every_command_parser_grows_linearly(parser: str, family: str) -> None:
    assert_linear(PARSERS[parser], FAMILIES[family])


@pytest.mark.parametrize("family", FAMILIES, ids=str)
def test_routing_grows_linearly(family: str) -> None:
    assert_linear(lambda text: router.match("学习 " + text), FAMILIES[family])


@pytest.mark.parametrize("family", ["spaces", "spaces-before-unit", "full-width-spaces"])
@pytest.mark.parametrize("bare", ["minutes", "hours"])
def test_the_amount_pattern_grows_linearly(bare: Any, family: str) -> None:
    # The review's finding: `学习 1` + 200 spaces + `x` took 2.2 s, 300 spaces 16.5 s.
    assert_linear(lambda text: parse_amount(text, bare=bare), FAMILIES[family])


CQ_FAMILIES: dict[str, Callable[[int], str]] = {
    "commas-unclosed": lambda n: "[CQ:at" + "," * n,
    "commas-then-bracket": lambda n: "[CQ:at" + "," * n + "[",
    "pairs-unclosed": lambda n: "[CQ:image" + ",a=b" * (n // 4),
    "starts": lambda n: "[CQ:" * (n // 4),
    "names": lambda n: "[CQ:" + "a" * n,
    "escapes": lambda n: "[CQ:x," + "&#44;" * (n // 5),
}


@pytest.mark.parametrize("family", CQ_FAMILIES, ids=str)
def test_cq_codes_grow_linearly(family: str) -> None:
    # The review's finding: the CQ-code pattern backtracked on commas.
    assert_linear(parse_cq, CQ_FAMILIES[family])
    assert_linear(read, CQ_FAMILIES[family])


@pytest.mark.parametrize("family", FAMILIES, ids=str)
def test_normalising_and_counting_grow_linearly(family: str) -> None:
    assert_linear(read_text, FAMILIES[family])
    assert_linear(counted_chars, FAMILIES[family])


def test_wechat_xml_grows_linearly() -> None:
    def xml(text: str) -> str:
        return f"<xml><MsgType>text</MsgType><Content><![CDATA[{text}]]></Content></xml>"

    assert_linear(lambda text: parse_xml(xml(text)), FAMILIES["spaces"])
    assert_linear(lambda text: parse_xml(xml(text)), FAMILIES["commas"])
