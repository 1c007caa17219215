"""`qiyi demo` as a newcomer runs it: `.venv/bin/qiyi demo`, then the printed commands pasted
as they are into another terminal, then Ctrl+C — and no temporary folder is left behind."""

from __future__ import annotations

import os
import queue
import shlex
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.demo import DEFAULT_URL, instructions, invocation
from tests.robustness.cli_process import TIMEOUT_S, clean_env

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the program as it was invoked -------------------------------------------------------


@pytest.mark.parametrize(
    ("argv0", "expected"),
    [
        (".venv/bin/qiyi", ".venv/bin/qiyi"),
        ("/srv/qiyi/.venv/bin/qiyi", "/srv/qiyi/.venv/bin/qiyi"),
        ("/srv/my files/.venv/bin/qiyi", "'/srv/my files/.venv/bin/qiyi'"),
        ("/srv/qiyi/bot/__main__.py", "/srv/qiyi/.venv/bin/python -m bot"),
        ("-c", "/srv/qiyi/.venv/bin/python -m bot"),
        ("not-a-program-on-path", "/srv/qiyi/.venv/bin/python -m bot"),
    ],
)
def test_the_program_is_named_as_it_was_invoked(argv0: str, expected: str) -> None:
    assert invocation(argv0, "/srv/qiyi/.venv/bin/python") == expected


def test_the_printed_commands_name_the_program_and_the_server() -> None:
    lines = instructions(
        "/tmp/qiyi-demo-x/demo.db",
        "sqlite+aiosqlite:////tmp/qiyi-demo-x/demo.db",
        ".venv/bin/qiyi",
        "curl …",
        "http://127.0.0.1:9000",
    )

    chat = next(line for line in lines if "chat --as" in line)
    assert shlex.split(chat)[1:] == [".venv/bin/qiyi", "chat", "--as", "1001"]
    sample = next(line for line in lines if "wechat sample" in line)
    assert ".venv/bin/qiyi wechat sample --text 积分 --url http://127.0.0.1:9000" in sample
    assert "(from this folder)" in "\n".join(lines)  # a relative path works only here
    default = instructions("d", "u", "/abs/qiyi", "curl …", DEFAULT_URL)
    assert not any("--url" in line for line in default)
    assert "(from this folder)" not in "\n".join(default)


# --- the demo as a process ---------------------------------------------------------------


class Demo:
    """`.venv/bin/qiyi demo` started from a folder, its stdout read line by line."""

    def __init__(self, cwd: Path, env: dict[str, str], port: int) -> None:
        self.env = env
        self.process = subprocess.Popen(
            [".venv/bin/qiyi", "demo", "--port", str(port)],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.seen: list[str] = []

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def until(self, text: str) -> str:
        """The first line (from here on) containing `text`."""
        while True:
            line = self.lines.get(timeout=TIMEOUT_S)
            assert line is not None, "the demo ended:\n" + "\n".join(self.seen)
            self.seen.append(line)
            if text in line:
                return line

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=TIMEOUT_S)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    """The demo started as a newcomer does, from a folder holding the venv as `.venv`, with
    its temporary files under tmp_path/tmp."""
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "bin").symlink_to(VENV_BIN)
    (tmp_path / "tmp").mkdir()
    env = clean_env(
        {"TMPDIR": str(tmp_path / "tmp"), "QIYI_SCHEDULER": "off", "PYTHONUNBUFFERED": "1"}
    )
    running = Demo(tmp_path, env, free_port())
    yield running
    running.stop()


def wait_until_it_answers(url: str) -> None:
    """Until GET url answers (the server is up): retried on refusal, no fixed sleep."""
    for _ in range(600):
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT_S) as answer:
                assert answer.status == 200
                return
        except urllib.error.URLError as problem:
            if not isinstance(problem.reason, ConnectionRefusedError):
                raise
            threading.Event().wait(0.05)  # not listening yet: try again in a moment
    raise AssertionError(f"{url} never answered")


def paste(line: str, cwd: Path, env: dict[str, str], typed: str = "") -> str:
    """Run a printed line in a shell, as pasted into another terminal; its output."""
    done = subprocess.run(
        ["/bin/sh", "-c", line.strip()],
        cwd=cwd,
        env=env,
        input=typed,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, (line, done.stdout, done.stderr)
    return done.stdout


def test_printed_commands_paste_as_they_are_and_ctrl_c_removes_the_folder(
    demo: Demo, tmp_path: Path
) -> None:
    heading = demo.until("Qiyi demo — database")
    chat = demo.until("chat --as 1001")
    sample = demo.until("wechat sample")
    listening = demo.until("Qiyi listening on")
    folder = Path(heading.split("database ")[1].split(" ")[0]).parent
    assert folder.parent == tmp_path / "tmp"
    assert folder.name.startswith("qiyi-demo-")
    assert folder.is_dir()
    assert ".venv/bin/qiyi chat --as 1001" in chat

    # The chat line, pasted in another terminal (another shell: no venv on PATH).
    shell_env = clean_env({"PATH": "/usr/bin:/bin"})
    reply = paste(chat, tmp_path, shell_env, typed="今日\n")
    assert "今日学习：0/120 分钟" in reply
    # The WeChat sample line gives a curl for this demo's server.
    curl = paste(sample.split("A fresh one: ")[1], tmp_path, shell_env)
    server = listening.split("on ")[1].split(" ")[0]
    assert shlex.split(curl)[4].startswith(f"{server}/wechat?")

    wait_until_it_answers(f"{server}/healthz")
    # The console's sign-in link for the demo's admin works (confirm, then the overview).
    console = next(i for i, line in enumerate(demo.seen) if "The web console" in line)
    link = demo.seen[console + 1].strip()
    assert link.startswith(f"{server}/admin/link/")
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    confirmed = browser.open(urllib.request.Request(link, data=b"", method="POST"))
    assert confirmed.status == 200 and "刘洋（管理员）" in confirmed.read().decode()
    demo.process.send_signal(signal.SIGINT)  # Ctrl+C

    assert demo.process.wait(timeout=TIMEOUT_S) == 0
    assert not folder.exists()
    assert os.listdir(tmp_path / "tmp") == []
