"""Open-loop load: requests sent at a fixed rate whatever the replies, latency as the sender
feels it.

A closed-loop generator (wrk, `bench.webhook`'s aiohttp client) sends the next request of a
connection only when the last one is answered: a slow server slows the generator down, and
the requests that would have been sent meanwhile are never measured (coordinated omission).
Here request i is due at `start + i / rate` for `seconds`, sent then whatever is still in
flight, and its latency runs from that *due* time to the full reply: a server that stalls
makes every request due during the stall count the wait. A request without a reply (timed
out after `TIMEOUT_S`, refused) counts as slower than any in the percentiles.

The generator's own lateness is measured too: the lag from a request's due time to the
moment its coroutine starts sending. It is part of every latency reported (so it errs on the
slow side), and the report says how late the generator was; a lag above `LATE_S` counts the
request as "late". In-flight requests are capped only by `max_in_flight` (one connection
each, HTTP/1.1 has no pipelining), far above what the rate needs while the server keeps up; a
request that has to wait for a slot is counted as "held" (and its wait is in its lag).

The requests go out through a lean keep-alive HTTP/1.1 client (below: the bytes of each
request built beforehand, a reply read up to its Content-Length), several times cheaper
than aiohttp's client, which on a 2-core machine shared with the server fell behind its own
schedule. For higher rates `clients` processes split the schedule (client k of n sends
requests k, k + n, k + 2n …, all against one start time on the machine's monotonic clock,
which every process shares):

    python -m bench.open_loop --client FILE   # one client process, driven by `run_clients`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import resource
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

LATE_S = 0.005  # a request started more than this after its due time was sent late
TIMEOUT_S = 10.0  # a request without its full reply after this is an error
MAX_IN_FLIGHT = 2_000  # requests (and connections) in flight at most, per client process
START_LEAD_S = 0.2  # from the call (or every client being ready) to the first due time

# (the path with its query, the body): one request, built and signed beforehand.
Request = tuple[str, str]


@dataclass
class OpenLoad:
    """What one open-loop phase measured (several clients' merged by `merged`)."""

    rate: float  # the target rate, requests a second
    scheduled: int  # requests on the schedule
    replies: int = 0  # full replies received (good or bad)
    errors: int = 0  # bad replies, timeouts and connection errors
    held: int = 0  # requests that waited for a free slot (the in-flight cap)
    late: int = 0  # requests started more than LATE_S after their due time (held ones too)
    max_in_flight: int = 0
    seconds: float = 0.0  # from the first due time until every request is answered or failed
    cpu_seconds: float = 0.0  # the generator's own CPU (every client process)
    clients: int = 1
    sample: str = ""  # the first bad reply or error
    # (due time after the start, latency from the due time): one pair per reply received.
    samples: list[tuple[float, float]] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)  # due time → sending started, per request

    def latencies(self) -> list[float]:
        """Every scheduled request's latency in seconds, sorted: one without a reply (timed
        out, refused) counts as slower than any, `math.inf`."""
        replied = sorted(latency for _, latency in self.samples)
        return replied + [math.inf] * max(0, self.scheduled - len(replied))

    def latency_ms(self, share: float) -> float:
        """The percentile over every scheduled request (`math.inf` past the replies)."""
        return percentile(self.latencies(), share) * 1000

    def lag_ms(self, share: float) -> float:
        return percentile(sorted(self.lags), share) * 1000

    @property
    def max_ms(self) -> float:
        return max(self.latencies(), default=0.0) * 1000

    @property
    def achieved_rate(self) -> float:
        """Replies a second over the phase (below the rate when the server fell behind)."""
        return self.replies / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> OpenLoad:
        data = json.loads(text)
        data["samples"] = [tuple(pair) for pair in data["samples"]]
        return cls(**data)


def percentile(ordered: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of sorted values (0.0 for none)."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def merged(parts: Sequence[OpenLoad], rate: float) -> OpenLoad:
    """The clients' results as one phase."""
    total = OpenLoad(rate=rate, scheduled=0, clients=len(parts))
    for part in parts:
        total.scheduled += part.scheduled
        total.replies += part.replies
        total.errors += part.errors
        total.held += part.held
        total.late += part.late
        total.max_in_flight += part.max_in_flight
        total.seconds = max(total.seconds, part.seconds)
        total.cpu_seconds += part.cpu_seconds
        total.sample = total.sample or part.sample
        total.samples.extend(part.samples)
        total.lags.extend(part.lags)
    return total


# ---- a lean HTTP/1.1 client ---------------------------------------------------------------
#
# aiohttp's client costs a few hundred µs of CPU a request; on a small machine shared with
# the server that made the generator, not the server, fall behind its schedule. The requests
# here are known in advance and the servers are ours on loopback, so a keep-alive client of
# a few lines does: the request's bytes built beforehand, the reply read up to its
# Content-Length (every server measured sends one; a reply without one is an error).

HEAD_END = b"\r\n\r\n"
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
CLOSE = re.compile(rb"\r\nconnection:[ \t]*close", re.IGNORECASE)


class ReplyError(Exception):
    """The server's reply could not be read (no Content-Length, the connection closed)."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its reply parsed as it arrives."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is None or self.waiter.done():
            return
        end = self.buffer.find(HEAD_END)
        if end < 0:
            return
        head = bytes(self.buffer[:end])
        length = CONTENT_LENGTH.search(head)
        if length is None:
            self.waiter.set_exception(ReplyError(f"no Content-Length: {head[:120]!r}"))
            return
        size = end + len(HEAD_END) + int(length.group(1))
        if len(self.buffer) < size:
            return
        body = bytes(self.buffer[end + len(HEAD_END) : size])
        del self.buffer[:size]
        status = int(head[9:12])
        self.waiter.set_result((status, body, CLOSE.search(head) is not None))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ReplyError(f"connection closed: {exc!r}"))

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        try:
            status, body, close = await self.waiter
        except BaseException:  # a timeout's cancellation too
            self.close()  # a reply may still come: the connection cannot be reused
            raise
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class _Connections:
    """Idle keep-alive connections to one server; a new one when none is idle."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[_Connection] = []
        self.opened: list[_Connection] = []

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        while self.idle:
            connection = self.idle.pop()
            if not connection.closed:
                break
        else:
            loop = asyncio.get_running_loop()
            _, connection = await loop.create_connection(_Connection, self.host, self.port)
            self.opened.append(connection)
        status, body = await connection.exchange(request)
        if not connection.closed:
            self.idle.append(connection)
        return status, body

    def close(self) -> None:
        for connection in self.opened:
            connection.close()


def request_bytes(host: str, port: int, target: str, body: str) -> bytes:
    data = body.encode()
    head = (
        f"POST {target} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: text/xml\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    return head.encode("ascii") + data


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def send_at_rate(
    base: str,
    requests: Sequence[Request],
    rate: float,
    *,
    expect: str,
    reject: str = "",
    start: Callable[[], Awaitable[float]] | None = None,
    offset: float = 0.0,
    interval: float | None = None,
    max_in_flight: int = MAX_IN_FLIGHT,
    request_timeout: float = TIMEOUT_S,
) -> OpenLoad:
    """Send `requests[j]` at `begin + offset + j * interval` (by default every 1 / rate from
    a moment from now), each whatever the others are doing; see the module's docstring.

    `start`, when given, is awaited once the requests are prepared and returns `begin`, a
    time of the monotonic clock (`time.monotonic()`, the event loop's clock). A reply is good
    when it is 200, holds `expect` and, when `reject` is given, not `reject`.
    """
    loop = asyncio.get_running_loop()
    interval = 1.0 / rate if interval is None else interval
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    # Built before the first is due: the schedule's loop only sleeps and starts requests.
    prepared = [request_bytes(host, port, target, body) for target, body in requests]
    begin = await start() if start is not None else loop.time() + START_LEAD_S
    load = OpenLoad(rate=rate, scheduled=len(requests))
    slots = asyncio.Semaphore(max_in_flight)
    in_flight = 0
    connections = _Connections(host, port)
    expected, rejected = expect.encode(), reject.encode()

    async def shoot(due: float, request: bytes) -> None:
        nonlocal in_flight
        if slots.locked():
            load.held += 1
        async with slots:
            lag = loop.time() - due  # the generator's lateness, a wait for a slot included
            load.lags.append(lag)
            if lag > LATE_S:
                load.late += 1
            in_flight += 1
            load.max_in_flight = max(load.max_in_flight, in_flight)
            try:
                async with asyncio.timeout(request_timeout):
                    status, answer = await connections.exchange(request)
                done = loop.time()
                load.samples.append((due - begin, done - due))
                load.replies += 1
                good = status == 200 and expected in answer
                if not good or (rejected and rejected in answer):
                    load.errors += 1
                    text = answer[:400].decode("utf-8", errors="replace")
                    load.sample = load.sample or f"{status} {text[:160]}"
            except (OSError, ReplyError, TimeoutError) as problem:
                load.errors += 1
                load.sample = load.sample or repr(problem)
            finally:
                in_flight -= 1

    before = cpu_seconds()
    try:
        tasks: list[asyncio.Task[None]] = []
        for j, request in enumerate(prepared):
            due = begin + offset + j * interval
            # Sleep until it is due, or at least let the requests started so far run.
            await asyncio.sleep(max(0.0, due - loop.time()))
            tasks.append(asyncio.create_task(shoot(due, request)))
        await asyncio.gather(*tasks)
    finally:
        connections.close()
    load.seconds = max(0.0, loop.time() - (begin + offset))
    load.cpu_seconds = cpu_seconds() - before
    return load


# ---- several client processes -----------------------------------------------------------

READY = "QIYI_OPEN_LOOP_READY"
RESULT = "QIYI_OPEN_LOOP_RESULT "


async def run_clients(
    base: str,
    requests: Sequence[Request],
    rate: float,
    clients: int,
    folder: Path,
    *,
    expect: str,
    reject: str = "",
    max_in_flight: int = MAX_IN_FLIGHT,
) -> OpenLoad:
    """The phase in this process (`clients` = 1) or split over `clients` processes, each
    started and ready (imports done, requests read) before the common start time is set."""
    if clients == 1:
        return await send_at_rate(
            base, requests, rate, expect=expect, reject=reject, max_in_flight=max_in_flight
        )
    processes: list[asyncio.subprocess.Process] = []
    try:
        for k in range(clients):
            plan = folder / f"open-loop-{k}.json"
            plan.write_text(
                json.dumps(
                    {
                        "base": base,
                        "requests": list(requests[k::clients]),
                        "rate": rate,
                        "offset": k / rate,
                        "interval": clients / rate,
                        "expect": expect,
                        "reject": reject,
                        "max_in_flight": max_in_flight,
                    }
                ),
                encoding="utf-8",
            )
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.open_loop",
                "--client",
                str(plan),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            processes.append(process)
        for process in processes:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), 60)
            if line.decode().strip() != READY:
                raise RuntimeError(f"an open-loop client did not start: {line[:200]!r}")
        start = time.monotonic() + START_LEAD_S
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(f"{start!r}\n".encode())
            await process.stdin.drain()
            process.stdin.close()
        parts: list[OpenLoad] = []
        for process in processes:
            out, _ = await process.communicate()
            found = [
                line[len(RESULT) :] for line in out.decode().splitlines() if line.startswith(RESULT)
            ]
            if process.returncode != 0 or not found:
                raise RuntimeError(f"an open-loop client failed ({process.returncode})")
            parts.append(OpenLoad.from_json(found[0]))
        return merged(parts, rate)
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def _client(plan: dict[str, Any]) -> OpenLoad:
    requests = [(target, body) for target, body in plan["requests"]]
    loop = asyncio.get_running_loop()

    async def start() -> float:
        """Ready (the requests prepared): the start time `run_clients` sends back."""
        print(READY, flush=True)
        return float(await loop.run_in_executor(None, sys.stdin.readline))

    return await send_at_rate(
        plan["base"],
        requests,
        plan["rate"],
        expect=plan["expect"],
        reject=plan["reject"],
        start=start,
        offset=plan["offset"],
        interval=plan["interval"],
        max_in_flight=plan["max_in_flight"],
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.open_loop")
    parser.add_argument("--client", type=Path, required=True, help="the plan `run_clients` wrote")
    args = parser.parse_args(argv)
    plan = json.loads(args.client.read_text(encoding="utf-8"))
    load = asyncio.run(_client(plan))
    print(RESULT + load.as_json(), flush=True)


if __name__ == "__main__":
    main()
