"""The open-loop load generator (bench/open_loop.py) against small servers on loopback: its
schedule and its latency accounting, with bounds that hold however slow the machine is."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from bench.open_loop import OpenLoad, run_clients, send_at_rate

Handler = Callable[[web.Request], Awaitable[web.Response]]
REPLY = "<xml><Content>收到</Content></xml>"


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Starts an aiohttp server on a free loopback port with a handler for POST /wechat."""
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_post("/wechat", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


def requests(count: int) -> list[tuple[str, str]]:
    return [(f"/wechat?n={i}", f"<xml><MsgId>{i}</MsgId></xml>") for i in range(count)]


def due_offsets(load: OpenLoad) -> list[float]:
    return sorted(due for due, _ in load.samples)


async def test_latency_includes_the_servers_time(serve: Callable[[Handler], Awaitable[str]]):
    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(0.05)
        return web.Response(text=REPLY)

    base = await serve(slow)
    load = await send_at_rate(base, requests(20), 40.0, expect="<Content>")

    assert (load.scheduled, load.replies, load.errors) == (20, 20, 0)
    assert min(latency for _, latency in load.samples) >= 0.05
    assert load.latency_ms(0.5) >= 50.0
    # One due time per request, 1/40 s apart: the schedule, whatever the replies.
    assert due_offsets(load) == pytest.approx([i / 40 for i in range(20)])
    assert len(load.lags) == 20
    assert load.seconds >= 19 / 40 + 0.05


async def test_a_stall_counts_for_every_request_due_during_it(
    serve: Callable[[Handler], Awaitable[str]],
):
    """The first request holds the server 300 ms; the requests due meanwhile are still sent
    on schedule, and their latency runs from their due time, not from when the server got
    round to them (a closed loop would have measured one slow request)."""
    lock = asyncio.Lock()
    stalled = False

    async def stalling(_request: web.Request) -> web.Response:
        nonlocal stalled
        async with lock:
            if not stalled:
                stalled = True
                await asyncio.sleep(0.3)
        return web.Response(text=REPLY)

    base = await serve(stalling)
    load = await send_at_rate(base, requests(100), 100.0, expect="<Content>")

    assert (load.replies, load.errors) == (100, 0)
    # Every reply comes after the stall ended, at or after start + 0.3 s: a request due at
    # `due` waited at least 0.3 - due (1 ms of slack for float rounding).
    for due, latency in load.samples:
        assert latency >= 0.3 - due - 0.001
    assert load.max_ms >= 300.0
    # The 20 requests due in the first 0.2 s each waited more than 0.1 s.
    assert sum(1 for _, latency in load.samples if latency > 0.1) >= 20
    assert load.latency_ms(0.99) > 100.0
    # The requests were sent while the first waited: several in flight at once.
    assert load.max_in_flight >= 10


async def test_bad_replies_and_refused_ones_are_errors(
    serve: Callable[[Handler], Awaitable[str]],
):
    async def picky(request: web.Request) -> web.Response:
        n = int(request.query["n"])
        if n % 4 == 1:
            return web.Response(status=500, text="oops")
        if n % 4 == 2:
            return web.Response(text="<xml>no content</xml>")
        if n % 4 == 3:
            return web.Response(text="<xml><Content>系统开小差</Content></xml>")
        return web.Response(text=REPLY)

    base = await serve(picky)
    load = await send_at_rate(base, requests(8), 50.0, expect="<Content>", reject="系统开小差")

    assert (load.replies, load.errors) == (8, 6)
    assert load.sample.startswith("500")


async def test_a_closed_port_is_an_error_not_a_latency():
    base = "http://127.0.0.1:9"  # discard: nothing listens there
    load = await send_at_rate(base, requests(3), 50.0, expect="<Content>", request_timeout=2.0)

    assert (load.replies, load.errors, len(load.samples)) == (0, 3, 0)
    # No reply is slower than any: the percentiles say so rather than 0 or nothing.
    assert load.latency_ms(0.5) == math.inf and load.max_ms == math.inf
    assert load.seconds > 0


async def test_the_cap_holds_requests_back_and_their_wait_is_lag(
    serve: Callable[[Handler], Awaitable[str]],
):
    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(0.2)
        return web.Response(text=REPLY)

    base = await serve(slow)
    # 10 a second, each answered in 0.2 s, at most one in flight: the later ones wait.
    load = await send_at_rate(base, requests(5), 10.0, expect="<Content>", max_in_flight=1)

    assert (load.replies, load.errors, load.max_in_flight) == (5, 0, 1)
    assert load.held >= 1
    assert load.late >= 1
    assert max(load.lags) >= 0.1
    # The last one, due at 0.4 s, is answered after 5 × 0.2 s at the earliest.
    assert max(latency for _, latency in load.samples) >= 1.0 - 0.4


async def test_two_client_processes_share_the_schedule(
    serve: Callable[[Handler], Awaitable[str]], tmp_path: Path
):
    seen: list[int] = []

    async def counting(request: web.Request) -> web.Response:
        seen.append(int(request.query["n"]))
        return web.Response(text=REPLY)

    base = await serve(counting)
    load = await run_clients(base, requests(20), 50.0, 2, tmp_path, expect="<Content>")

    assert (load.clients, load.scheduled, load.replies, load.errors) == (2, 20, 20, 0)
    assert sorted(seen) == list(range(20))  # each request sent once, by one of them
    assert due_offsets(load) == pytest.approx([i / 50 for i in range(20)])
    assert load.cpu_seconds > 0


async def raw_server(reply: bytes) -> tuple[asyncio.Server, str]:
    """A server that reads one request a connection, writes `reply` and closes."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        writer.write(reply)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def test_a_server_that_closes_after_each_reply_is_read_anew_each_time():
    body = b"<xml><Content>x</Content></xml>"
    reply = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )
    server, base = await raw_server(reply)
    async with server:
        load = await send_at_rate(base, requests(6), 50.0, expect="<Content>")
    assert (load.replies, load.errors) == (6, 0)


async def test_a_reply_without_its_length_is_an_error():
    server, base = await raw_server(b"HTTP/1.1 200 OK\r\n\r\n<xml><Content>x</Content></xml>")
    async with server:
        load = await send_at_rate(base, requests(3), 50.0, expect="<Content>")
    assert (load.replies, load.errors) == (0, 3)
    assert "Content-Length" in load.sample
