"""`qiyi serve --workers 2` as an operator runs it: gunicorn with two aiohttp workers on
PostgreSQL, each listening on a socket of its own (SO_REUSEPORT), so that the kernel spreads
long-lived keep-alive connections (nginx's upstream pool) over both.

Linux only: which process holds which socket is read from /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import TOKEN, _reset_postgres

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux /proc")

CONNECTIONS = 40
START_SECONDS = 60.0
LISTEN, ESTABLISHED = "0A", "01"  # TCP states as /proc/net/tcp writes them


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # a descriptor closed meanwhile
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    return inodes


def tcp_sockets(port: int, state: str) -> set[str]:
    """The inodes of the IPv4 TCP sockets on local `port` in `state`."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and fields[3] == state:
            found.add(fields[9])
    return found


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.fixture
def server(pg_url: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    asyncio.run(_reset_postgres(pg_url))
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "QIYI_DATABASE_URL": pg_url,
        "QIYI_WECHAT_TOKEN": TOKEN,
        "QIYI_SCHEDULER": "off",
    }
    command = [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--workers", "2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process, port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


async def listening_workers(process: subprocess.Popen[bytes], port: int) -> dict[int, set[str]]:
    """Each worker's listening sockets on the port, once both workers listen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_SECONDS
    while loop.time() < deadline:
        assert process.poll() is None, "the server exited"
        listening = tcp_sockets(port, LISTEN)
        workers = {pid: socket_inodes(pid) & listening for pid in children(process.pid)}
        if len(workers) == 2 and all(workers.values()):
            return workers
        await asyncio.sleep(0.2)  # waiting for gunicorn to boot its workers
    raise AssertionError(f"two workers did not listen on {port} within {START_SECONDS:.0f} s")


async def test_each_worker_listens_on_its_own_socket_and_gets_connections(
    server: tuple[subprocess.Popen[bytes], int],
) -> None:
    process, port = server
    workers = await listening_workers(process, port)

    first, second = workers.values()
    assert first.isdisjoint(second)  # a socket each, not one inherited from the master
    assert not socket_inodes(process.pid) & tcp_sockets(port, LISTEN)  # the master accepts none

    # A burst of keep-alive connections, held open, as nginx's upstream pool holds them.
    connector = aiohttp.TCPConnector(limit=CONNECTIONS, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def health() -> int:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                await response.read()
                return response.status

        statuses = await asyncio.gather(*(health() for _ in range(CONNECTIONS)))
        assert statuses == [200] * CONNECTIONS
        established = tcp_sockets(port, ESTABLISHED)
        held = {pid: len(socket_inodes(pid) & established) for pid in workers}

    assert sum(held.values()) == CONNECTIONS
    # The kernel hashes connections over the two sockets: both workers serve a share
    # (fewer than 5 of 40 on either side happens with a chance of about 1 in 10 million).
    assert min(held.values()) >= 5, held
