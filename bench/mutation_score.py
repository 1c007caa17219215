"""The mutation score of the last `mutmut run` (README: "Mutation testing"; docs/mutation.md).

    .venv/bin/python -m bench.mutation_score

reads mutmut 3's record of every mutant (`mutants/<path>.meta`, one per mutated module: each
mutant's exit code) and prints killed/total as a percentage for each module, then for all of
them, with the other outcomes counted. A timeout is a mutant the tests caught (it hung them),
so it counts as killed. Exit codes mean what mutmut says they mean (`mutmut.stats`).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from mutmut.stats import status_by_exit_code

MUTANTS = Path("mutants")
META = ".py.meta"


def score(stats: dict[str, int]) -> str:
    """One line: the caught share of the mutants checked, then every outcome that occurred."""
    caught = stats["killed"] + stats["timeout"]
    total = stats["total"]
    share = f"{100 * caught / total:.1f}%" if total else "—"
    outcomes = ", ".join(
        f"{name.replace('_', ' ')} {count}"
        for name, count in stats.items()
        if name not in ("total", "check_was_interrupted_by_user") and count
    )
    return f"{caught}/{total} mutants killed ({share}): {outcomes}"


def tally(exit_codes: Iterable[int | None]) -> dict[str, int]:
    """The mutants by outcome (`killed`, `survived`, `not_checked`, …), and their `total`."""
    counts = Counter(status_by_exit_code[code].replace(" ", "_") for code in exit_codes)
    stats = {"killed": 0, "timeout": 0, **counts}
    stats["total"] = sum(counts.values())
    return stats


def by_module(mutants: Path = MUTANTS) -> dict[str, dict[str, int]]:
    """Each mutated module (`bot.ladder`) with its tally, in name order."""
    found: dict[str, dict[str, int]] = {}
    for meta in sorted(mutants.rglob(f"*{META}")):
        module = ".".join(meta.relative_to(mutants).parts)[: -len(META)]
        exit_codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"].values()
        found[module] = tally(exit_codes)
    return found


def report(modules: dict[str, dict[str, int]]) -> list[str]:
    """A line per module, then the line for all of them."""
    width = max(map(len, modules))
    total: Counter[str] = Counter()
    for stats in modules.values():
        total.update(stats)
    lines = [f"{module:<{width}}  {score(stats)}" for module, stats in modules.items()]
    return [*lines, score({"killed": 0, "timeout": 0, **total})]


def main() -> None:
    modules = by_module()
    if not modules:
        sys.exit("No mutmut results here: run `.venv/bin/mutmut run` first.")
    print("\n".join(report(modules)))


if __name__ == "__main__":
    main()
