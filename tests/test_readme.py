"""The README is the front door: its tables must match the code."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from bot.demo import DEFAULT_URL, instructions
from bot.settings import Settings
from handlers import router

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_command_word_is_in_the_command_table() -> None:
    table = README.split("## What members and secretaries say")[1].split("\n## ")[0]
    for command in router.commands:
        for name in command.names:
            assert f"`{name}" in table, f"README's command table lacks {name}"


def test_every_setting_is_in_the_settings_table() -> None:
    table = README.split("## Settings")[1].split("\n## ")[0]
    documented = set(re.findall(r"`(QIYI_[A-Z0-9_]+)`", table))
    expected = {f"QIYI_{name.upper()}" for name in Settings.model_fields}
    assert documented == expected


def test_ci_runs_exactly_the_readme_test_command() -> None:
    commands = re.findall(r"```sh\n(.+?)\n```", README)
    test_command = next(c for c in commands if "pytest" in c)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci
    assert shlex.split(test_command)[-1].endswith("pytest")


def test_the_quick_start_shows_the_commands_the_demo_prints() -> None:
    quick_start = README.split("## Quick start")[1].split("\n## ")[0]
    assert ".venv/bin/qiyi demo" in quick_start
    printed = instructions(
        "/tmp/d/demo.db",
        "sqlite+aiosqlite:////tmp/d/demo.db",
        ".venv/bin/qiyi",
        "curl …",
        DEFAULT_URL,
    )
    chat = next(line for line in printed if "chat --as" in line).strip()
    assert chat.startswith("QIYI_DATABASE_URL=")
    assert f"`QIYI_DATABASE_URL=… {chat.split(' ', 1)[1]}`" in quick_start
    sample = next(line for line in printed if "wechat sample" in line).split(": ", 1)[1]
    assert f"`{sample}`" in quick_start
