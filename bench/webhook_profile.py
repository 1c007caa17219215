"""py-spy's view of a server under load, for bench/webhook.py (`--profile CASE`).

`py-spy record --native --gil --format raw --threads` writes collapsed stacks of the thread
holding the GIL, one line a stack: `thread (TID): NAME;frame;frame;… COUNT`, each frame
`function (file:line)` with the file relative to its sys.path entry
(`sqlalchemy/orm/session.py`, `bot/conversation.py`, `asyncio/base_events.py`) or a native
one (`libc.so.6`, `_asynciomodule.c`). Sampling only the GIL holder measures where Python
actually runs; py-spy's own idle detection counts threads blocked on a queue as busy here.
Besides py-spy, each thread's CPU time is read from /proc before and after.

The summary: the CPU of the server's event loop threads (the main threads) and of its other
threads (aiosqlite's connection threads); the event loop's GIL time by layer (the innermost
known library of a sample); its hottest functions (self time); and the inclusive time of
Qiyi's own functions. Code SQLAlchemy runs inside a greenlet has the greenlet's stack as
its root, so the inclusive shares of Qiyi's callers above it are lower bounds.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

RATE = 200  # samples a second

FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
THREAD = re.compile(r"^thread \((?P<tid>[^)]*)\)(?::\s*(?P<name>.*))?$")
QIYI_PACKAGES = ("bot", "data", "handlers", "content", "scheduler")

# The layer of a sample: the innermost frame whose top-level package is listed decides.
LAYERS: dict[str, str] = {
    "sqlalchemy": "SQLAlchemy + sqlmodel (ORM, Core, greenlet bridge)",
    "sqlmodel": "SQLAlchemy + sqlmodel (ORM, Core, greenlet bridge)",
    "aiosqlite": "aiosqlite (hand-off to its threads)",
    "asyncpg": "asyncpg driver",
    "jinja2": "Jinja2 rendering",
    "markupsafe": "Jinja2 rendering",
    "wechatpy": "wechatpy + XML (parse, reply, crypto)",
    "defusedxml": "wechatpy + XML (parse, reply, crypto)",
    "xmltodict": "wechatpy + XML (parse, reply, crypto)",
    "xml": "wechatpy + XML (parse, reply, crypto)",
    "cryptography": "wechatpy + XML (parse, reply, crypto)",
    "logging": "logging (access log, …)",
    "aiohttp": "aiohttp (HTTP server)",
    "yarl": "aiohttp (HTTP server)",
    "multidict": "aiohttp (HTTP server)",
    **dict.fromkeys(QIYI_PACKAGES, "Qiyi's own code"),
    "asyncio": "asyncio event loop (epoll, callbacks, tasks)",
    "selectors": "asyncio event loop (epoll, callbacks, tasks)",
}


@dataclass
class ThreadCpu:
    """CPU seconds of a process group's threads: main threads and the others."""

    main_user: float = 0.0
    main_system: float = 0.0
    other_user: float = 0.0
    other_system: float = 0.0

    def __sub__(self, before: ThreadCpu) -> ThreadCpu:
        return ThreadCpu(
            self.main_user - before.main_user,
            self.main_system - before.main_system,
            self.other_user - before.other_user,
            self.other_system - before.other_system,
        )


def thread_cpu(pgid: int) -> ThreadCpu:
    """User and system CPU of every thread of every live process in the group."""
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = ThreadCpu()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat[stat.rfind(")") + 2 :].split()[2]) != pgid:
                continue
            tasks = list((entry / "task").iterdir())
        except (OSError, ValueError):
            continue
        for task in tasks:
            try:
                raw = (task / "stat").read_text()
            except OSError:
                continue
            fields = raw[raw.rfind(")") + 2 :].split()
            user, system = int(fields[11]) / ticks, int(fields[12]) / ticks
            if task.name == entry.name:
                cpu.main_user += user
                cpu.main_system += system
            else:
                cpu.other_user += user
                cpu.other_system += system
    return cpu


@dataclass
class Profile:
    samples: int
    seconds: float
    cpu: ThreadCpu  # over the profiled seconds
    threads: list[tuple[str, float]]  # thread kind, share of the time it held the GIL
    main_layers: list[tuple[str, float]]  # share of the event loop thread's samples
    main_functions: list[tuple[str, float]]
    main_inclusive: list[tuple[str, float]]


def package(file: str) -> str:
    return file.split("/", 1)[0].removesuffix(".py")


def thread_kind(name: str) -> str:
    if "_connection_worker_thread" in name:
        return "aiosqlite connection threads"
    if name.startswith("MainThread"):
        return "MainThread (event loop)"
    return re.sub(r"[-_ ]?\d+", "", name).strip() or "other"


def layer_of(frames: list[re.Match[str] | None]) -> str:
    for match in reversed(frames):
        if match is None:
            continue
        found = LAYERS.get(package(match["file"]))
        if found:
            return found
    return "other"


def summarise(raw: str, seconds: float, cpu: ThreadCpu, top: int = 12) -> Profile:
    threads: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = main_total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        while frames and frames[0].startswith("process "):
            frames = frames[1:]
        kind = "other"
        if frames and (thread := THREAD.match(frames[0])):
            kind = thread_kind(thread["name"] or "")
            frames = frames[1:]
        total += count
        threads[kind] += count
        if not kind.startswith("MainThread"):
            continue
        main_total += count
        parsed = [FRAME.match(frame) for frame in frames]
        layers[layer_of(parsed)] += count
        leaf = parsed[-1] if parsed else None
        functions[f"{leaf['file']}:{leaf['function']}" if leaf else "?"] += count
        names = {f"{m['file']}:{m['function']}" for m in parsed if m is not None}
        for name in names:  # once per stack, however deep the recursion
            if package(name) in QIYI_PACKAGES:
                inclusive[name] += count

    def shares(counter: Counter[str], of: int) -> list[tuple[str, float]]:
        return [(name, n / of) for name, n in counter.most_common(top)] if of else []

    held = [(kind, n / (RATE * seconds)) for kind, n in threads.most_common()]
    return Profile(
        total,
        seconds,
        cpu,
        held,
        shares(layers, main_total),
        shares(functions, main_total),
        shares(inclusive, main_total),
    )


class ProfileError(Exception):
    pass


async def record(py_spy: str, pid: int, seconds: int, out: Path) -> Profile:
    """py-spy record on the server's process (and its children) for `seconds`; `pid` leads
    the server's process group."""
    before = await asyncio.to_thread(thread_cpu, pid)
    started = asyncio.get_running_loop().time()
    process = await asyncio.create_subprocess_exec(
        py_spy,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(seconds),
        "--rate",
        str(RATE),
        "--format",
        "raw",
        "--native",
        "--gil",
        "--threads",
        "--subprocesses",
        "--output",
        str(out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), seconds + 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise ProfileError("py-spy did not finish in time") from None
    cpu = await asyncio.to_thread(thread_cpu, pid) - before
    elapsed = asyncio.get_running_loop().time() - started
    raw = await asyncio.to_thread(_read, out)
    if process.returncode != 0 or raw is None:
        raise ProfileError(f"py-spy failed ({process.returncode}): {err.decode()[-300:]}")
    scale = 1 / elapsed
    per_second = ThreadCpu(
        cpu.main_user * scale,
        cpu.main_system * scale,
        cpu.other_user * scale,
        cpu.other_system * scale,
    )
    return summarise(raw, seconds, per_second)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None


def report_lines(profile: Profile, case_key: str) -> list[str]:
    cpu = profile.cpu
    lines = [
        f"Hot spots: case {case_key} once more, under the same load, after the table, with "
        f"py-spy --native --gil attached ({profile.samples:,} samples at {RATE} Hz over "
        f"{profile.seconds:.0f} s; py-spy slows the server while it samples):",
        f"  server CPU in cores (from /proc): main threads (event loop) {cpu.main_user:.2f} "
        f"user + {cpu.main_system:.2f} system; other threads (aiosqlite's) "
        f"{cpu.other_user:.2f} user + {cpu.other_system:.2f} system",
        "  share of the time each thread held the GIL: "
        + ", ".join(f"{kind} {held:.0%}" for kind, held in profile.threads),
        "  MainThread (event loop) GIL time by layer, innermost known library:",
        *(f"    {share:6.1%}  {name}" for name, share in profile.main_layers),
        "  MainThread self time, by function:",
        *(f"    {share:6.1%}  {name}" for name, share in profile.main_functions),
        "  MainThread inclusive time, Qiyi's functions (lower bounds, see webhook_profile.py):",
        *(f"    {share:6.1%}  {name}" for name, share in profile.main_inclusive),
    ]
    return lines
