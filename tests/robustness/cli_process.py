"""Running `qiyi` as a real process, for what is about the process: exit status, stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TIMEOUT_S = 60

# `main()` with one function replaced by one that raises: a bug, on demand. The arguments
# after `--` are the command line.
WITH_A_BUG = """
import sys
import bot.cli

def broken(*args, **kwargs):
    raise RuntimeError("the injected bug\\nwith a second line")

setattr(bot.cli, sys.argv[1], broken)
sys.argv = ["qiyi", *sys.argv[3:]]
bot.cli.main()
"""


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """PATH and the given settings only: no QIYI_ setting of the outer shell leaks in."""
    return {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", **extra}


def qiyi(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS` (what the `qiyi` script runs) in `cwd`."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=clean_env(env),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT_S,
        check=False,
    )


def qiyi_with_a_bug(
    cwd: Path, env: dict[str, str], broken: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """`qiyi ARGS` with `bot.cli.<broken>` raising RuntimeError when called."""
    return subprocess.run(
        [sys.executable, "-c", WITH_A_BUG, broken, "--", *args],
        cwd=cwd,
        env=clean_env(env),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT_S,
        check=False,
    )


def one_line(process: subprocess.CompletedProcess[str], status: int = 1) -> str:
    """The single line the process wrote on stderr, having exited with `status`."""
    assert process.returncode == status, (process.returncode, process.stderr)
    assert "Traceback" not in process.stderr, process.stderr
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1, process.stderr
    return lines[0]
