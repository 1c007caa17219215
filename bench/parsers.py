"""Parsing time of every parser on the message path, at its worst input.

For each parser — every command's argument parser (found through the router, so a new
command is measured too), the routing itself, the normalisation, the note counting rule, the
WeChat XML reading and the OneBot CQ codes — every adversarial family of inputs
(tests/robustness/test_parsing_growth.py: runs of spaces, commas, digits, half-/full-width
mixes, zero-width characters, CQ-code syntax …) is timed at 500 and 5,000 characters; the
row shows the worst family at 5,000, its time per call (best of several measurements) and
how it grew from 500 (linear: about ×10).

For comparison, the two patterns the review found (the amount pattern before, quartic in
the spaces; the CQ-code pattern before, exponential in the commas) are timed at the sizes
they can still be timed at.

    .venv/bin/python -m bench.parsers
    .venv/bin/python -m bench.parsers --markdown
"""

from __future__ import annotations

import argparse
import contextlib
import math
import re
import timeit
from collections.abc import Callable, Sequence
from typing import Any

from bench import tables
from bot.channels.onebot_message import parse_cq
from bot.channels.onebot_message import read as read_onebot
from bot.channels.wechat_envelope import parse_xml
from bot.router import UsageError
from bot.textforms import read as read_text
from handlers import router
from handlers.notes import counted_chars
from tests.robustness.test_parsing_growth import CQ_FAMILIES, FAMILIES

SIZES = (500, 5000)

# The patterns the review measured (handlers/amounts.py and bot/channels/onebot_message.py
# before this change), kept here only to show what the figures are compared with.
_OLD_NUMBER = r"\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百千]+"
_OLD_HOURS = (
    r"(?:个)?\s*(?P<half>半)?\s*(?:个)?\s*(?:小时|钟头|hours?(?![a-z])|hrs?(?![a-z])|h(?![a-z]))"
)
_OLD_MINUTES = r"(?:分钟|分|minutes?(?![a-z])|mins?(?![a-z]))"
OLD_AMOUNT = re.compile(
    rf"""
    (?:
        (?P<hours>{_OLD_NUMBER})\s*{_OLD_HOURS}
        | 半\s*(?:个)?\s*(?P<half_only>小时|钟头)
    )
    (?:\s*(?P<extra>{_OLD_NUMBER})\s*(?:{_OLD_MINUTES}|$))?
    | (?P<bare>{_OLD_NUMBER})\s*(?P<minute_unit>{_OLD_MINUTES})?
    """,
    re.VERBOSE | re.IGNORECASE,
)
OLD_CQ = re.compile(r"\[CQ:([A-Za-z0-9_.\-]+)((?:,[^\[\]]*?)*)\]")


def per_call(call: Callable[[], Any], rounds: int = 5) -> float:
    """Seconds per call, the best of `rounds` measurements of at least 2 ms each."""
    once = timeit.timeit(call, number=1)
    number = max(1, min(100_000, math.ceil(2e-3 / max(once, 1e-8))))
    return min(timeit.repeat(call, number=number, repeat=rounds)) / number


def attempt(parse: Callable[[str], Any], text: str) -> Callable[[], None]:
    def call() -> None:
        with contextlib.suppress(UsageError):
            parse(text)

    return call


def parsers() -> dict[str, tuple[Callable[[str], Any], dict[str, Callable[[int], str]]]]:
    found: dict[str, tuple[Callable[[str], Any], dict[str, Callable[[int], str]]]] = {}
    for command in router.commands:
        if command.parse is not None and command.parse.__qualname__ not in found:
            label = f"{command.parse.__qualname__} ({command.name})"
            found[label] = (command.parse, FAMILIES)
    found["Router.match (学习 …)"] = (lambda text: router.match("学习 " + text), FAMILIES)
    found["textforms.read"] = (read_text, FAMILIES)
    found["notes.counted_chars"] = (counted_chars, FAMILIES)
    found["wechat_envelope.parse_xml"] = (
        lambda text: parse_xml(f"<xml><Content><![CDATA[{text}]]></Content></xml>"),
        FAMILIES,
    )
    found["onebot_message.parse_cq"] = (parse_cq, CQ_FAMILIES)
    found["onebot_message.read"] = (read_onebot, CQ_FAMILIES)
    return found


def worst_rows() -> list[list[str]]:
    rows: list[list[str]] = []
    for label, (parse, families) in parsers().items():
        measured: list[tuple[float, float, str]] = []
        for name, family in families.items():
            small, large = (per_call(attempt(parse, family(size))) for size in SIZES)
            measured.append((large, large / small, name))
        large, growth, name = max(measured)
        rows.append([label, name, f"{large * 1e6:,.0f}", f"×{growth:.1f}"])
    return rows


def old_rows() -> list[list[str]]:
    rows: list[list[str]] = []
    for spaces in (50, 100, 150):
        text = "1" + " " * spaces + "x"
        seconds = per_call(lambda text=text: OLD_AMOUNT.match(text), rounds=1)
        rows.append(["amount pattern", f"`1` + {spaces} spaces + `x`", f"{seconds * 1e6:,.0f}"])
    for commas in (12, 16, 20):
        text = "[CQ:at" + "," * commas
        seconds = per_call(lambda text=text: list(OLD_CQ.finditer(text)), rounds=1)
        rows.append(["CQ-code pattern", f"`[CQ:at` + {commas} commas", f"{seconds * 1e6:,.0f}"])
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", action="store_true", help="print plain Markdown")
    options = parser.parse_args(argv)
    rows = worst_rows()
    before = old_rows()
    columns = ["parser", "worst input (5,000 characters)", "µs per call", "from 500"]
    header = ["every parser's worst adversarial family at 5,000 characters, best of 5 runs"]
    if options.markdown:
        tables.print_markdown(columns, rows, header, [])
        tables.print_markdown(["pattern before", "input", "µs per call"], before, [], [])
        return 0
    for row in [columns, *rows]:
        print(f"{row[0]:<44} {row[1]:<24} {row[2]:>12} {row[3]:>9}")
    print()
    for row in before:
        print(f"{row[0]:<44} {row[1]:<24} {row[2]:>12}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
