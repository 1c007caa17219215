"""pytest, as this project configures it, prints the reason of every skip — and still lists
the failures in its summary (`-r` replaces its default `fE`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent.parent


def test_the_summary_gives_skip_reasons_and_failures(tmp_path: Path) -> None:
    (tmp_path / "test_example.py").write_text(
        "import pytest\n\n\n"
        "def test_needs_a_server() -> None:\n"
        "    pytest.skip('set THE_SERVER to run this')\n\n\n"
        "def test_broken() -> None:\n"
        "    assert 1 == 2\n",
        encoding="utf-8",
    )

    config = ["-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path)]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *config, str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert run.returncode == 1, run.stdout + run.stderr
    summary = run.stdout.split("short test summary info")[1]
    assert "SKIPPED [1]" in summary
    assert "set THE_SERVER to run this" in summary
    assert "FAILED test_example.py::test_broken" in summary
