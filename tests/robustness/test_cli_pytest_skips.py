"""pytest, as this project configures it, prints the reason of every skip."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent.parent


def test_a_skip_is_reported_with_its_reason(tmp_path: Path) -> None:
    (tmp_path / "test_skipping.py").write_text(
        "import pytest\n\n\n"
        "def test_needs_a_server() -> None:\n"
        "    pytest.skip('set THE_SERVER to run this')\n",
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

    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 skipped" in run.stdout
    assert "SKIPPED [1]" in run.stdout
    assert "set THE_SERVER to run this" in run.stdout
