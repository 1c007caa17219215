"""The mutation score of the last `mutmut run` (README: "Mutation testing"; docs/mutation.md).

    .venv/bin/python -m bench.mutation_score

asks mutmut 3 for its CI/CD summary (`mutmut export-cicd-stats`, written to
mutants/mutmut-cicd-stats.json) and prints killed/total as a percentage, with the other
outcomes counted. A timeout is a mutant the tests caught (it hung them), so it counts as killed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SUMMARY = Path("mutants") / "mutmut-cicd-stats.json"


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


def main() -> None:
    subprocess.run([sys.executable, "-m", "mutmut", "export-cicd-stats"], check=True)
    if not SUMMARY.exists():
        sys.exit("No mutmut results here: run `.venv/bin/mutmut run` first.")
    print(score(json.loads(SUMMARY.read_text(encoding="utf-8"))))


if __name__ == "__main__":
    main()
