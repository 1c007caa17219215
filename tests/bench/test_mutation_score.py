"""The mutation score (bench/mutation_score.py) from mutmut's per-module records: killed/total
for each module and for all of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("mutmut")

from bench.mutation_score import by_module, report

KILLED, SURVIVED, TIMEOUT, NO_TESTS = 1, 0, 36, 33


def record(mutants: Path, path: str, exit_codes: list[int | None]) -> None:
    """A `mutants/<path>.meta` as mutmut 3 writes it (only the part the score reads)."""
    meta = mutants / f"{path}.meta"
    meta.parent.mkdir(parents=True, exist_ok=True)
    codes = {f"mutant_{n}": code for n, code in enumerate(exit_codes, 1)}
    meta.write_text(json.dumps({"exit_code_by_key": codes, "durations_by_key": {}}))


def test_each_module_has_its_killed_share_and_the_last_line_counts_them_all(
    tmp_path: Path,
) -> None:
    record(tmp_path, "bot/ladder.py", [KILLED, KILLED, KILLED, SURVIVED])
    record(tmp_path, "bot/wecom_rung.py", [KILLED, TIMEOUT, None, NO_TESTS])
    record(tmp_path, "data/outbox.py", [SURVIVED, SURVIVED])

    modules = by_module(tmp_path)

    assert list(modules) == ["bot.ladder", "bot.wecom_rung", "data.outbox"]
    assert report(modules) == [
        "bot.ladder      3/4 mutants killed (75.0%): killed 3, survived 1",
        "bot.wecom_rung  2/4 mutants killed (50.0%): "
        "killed 1, timeout 1, not checked 1, no tests 1",
        "data.outbox     0/2 mutants killed (0.0%): survived 2",
        "5/10 mutants killed (50.0%): killed 4, timeout 1, survived 3, not checked 1, no tests 1",
    ]


def test_no_records_no_modules(tmp_path: Path) -> None:
    assert by_module(tmp_path) == {}
