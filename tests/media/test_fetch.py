"""The durable fetch of materials' files: queued with the material, fetched from the fake
WeChat API (and QQ URLs) into the media store, retried with backoff, failed with the reason,
never fetched twice; on both databases and both store backends."""

from __future__ import annotations

import hashlib
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from yarl import URL

from bot.app import build_conversation, wechat_api_for
from bot.channels import public_web
from bot.clock import FixedClock
from bot.material_fetch import MaterialFetcher
from bot.messages import Inbound, InboundKind, Media
from bot.settings import Settings
from data import material_files, migrate
from data.db import create_engine, session_factory
from data.media.store import MediaStore
from data.models import FetchState, Material, MaterialFile
from scheduler.jobs import PushJobs
from tests.conftest import Chat, make_settings, ready_store, seed
from tests.fakes.wechat_api import MEDIA_GET, FakeWeChat, repeated

AppClientFactory = Callable[[Any], Awaitable[TestClient]]
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00" + bytes(range(256)) * 8
SECRETARY = "1003"


@dataclass
class World:
    """A conversation on a database, the fake platforms, the store and a fetcher."""

    settings: Settings
    clock: FixedClock
    engine: AsyncEngine
    chat: Chat
    fake: FakeWeChat
    store: MediaStore
    fetcher: MaterialFetcher
    files: str  # the base URL of the QQ file server

    async def send(self, kind: str, reference: str, channel: str = "wechat") -> str:
        self.chat.channel = channel
        inbound = Inbound(
            self.chat.sender(SECRETARY),
            uuid.uuid4().hex,
            InboundKind.MEDIA,
            self.clock.now(),
            media=(Media(kind, reference),),
        )
        return await self.chat.conversation.respond(inbound)

    async def rows(self) -> list[tuple[Material, MaterialFile]]:
        async with session_factory(self.engine)() as session:
            statement = (
                select(Material, MaterialFile)
                .join(MaterialFile, col(MaterialFile.material_id) == Material.id)
                .order_by(col(Material.id))
            )
            return [(m, f) for m, f in await session.exec(statement)]

    async def file(self) -> MaterialFile:
        rows = await self.rows()
        return rows[-1][1]


async def qq_files() -> web.Application:
    """Where QQ keeps pictures and files: served by URL, with redirects good and bad."""
    app = web.Application()

    async def picture(_request: web.Request) -> web.Response:
        return web.Response(body=JPEG, content_type="image/jpeg")

    async def to_file_scheme(_request: web.Request) -> web.Response:
        raise web.HTTPFound("file:///etc/passwd")

    async def to_picture(_request: web.Request) -> web.Response:
        raise web.HTTPFound("/pic.jpg")

    async def to_loopback(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://127.0.0.1:{request.url.port}/pic.jpg")

    app.router.add_get("/to-loopback", to_loopback)
    app.router.add_get("/pic.jpg", picture)
    app.router.add_get("/moved", to_picture)
    app.router.add_get("/sneaky", to_file_scheme)
    return app


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def make_world(
    database_url: str,
    engine: AsyncEngine,
    clock: FixedClock,
    media_settings: dict[str, object],
    store: MediaStore,
    http: aiohttp.ClientSession,
    aiohttp_client: AppClientFactory,
    **overrides: object,
) -> World:
    fake = FakeWeChat()
    wechat = await aiohttp_client(fake.app())
    files = await aiohttp_client(await qq_files())
    settings = make_settings(
        database_url,
        wechat_appid=fake.appid,
        wechat_secret=fake.secret,
        wechat_api_base=str(wechat.make_url("")).rstrip("/"),
        **media_settings,
        # The fake QQ file server is on loopback (the guard has its own tests below).
        **({"media_fetch_private_ok": True} | overrides),
    )
    conversation = build_conversation(settings, clock, engine)
    await seed(conversation, content=False)
    chat = Chat(conversation)
    sessions = session_factory(engine)
    api = wechat_api_for(settings, http, sessions, clock)
    fetcher = MaterialFetcher(settings, clock, sessions, store, http, api)
    for channel in ("wechat", "qq"):
        chat.channel = channel
        await chat.bind(SECRETARY)
    return World(settings, clock, engine, chat, fake, store, fetcher, str(files.make_url("/")))


Worlds = Callable[..., Awaitable[World]]


@pytest.fixture
def worlds(
    database_url: str,
    engine: AsyncEngine,
    clock: FixedClock,
    media_settings: dict[str, object],
    media_store: MediaStore,
    http: aiohttp.ClientSession,
    aiohttp_client: AppClientFactory,
) -> Worlds:
    """Makes the world of a test, with settings of its own (`**overrides`)."""

    async def world(**overrides: object) -> World:
        return await make_world(
            database_url,
            engine,
            clock,
            media_settings,
            media_store,
            http,
            aiohttp_client,
            **overrides,
        )

    return world


@pytest.fixture
async def world(worlds: Worlds) -> World:
    return await worlds()


async def test_a_material_is_queued_with_it_and_its_file_kept(world: World) -> None:
    media_id = world.fake.add_media(JPEG, content_type="image/jpeg", filename="党日活动.jpg")
    await world.send("image", media_id)
    [(material, file)] = await world.rows()
    assert (material.reference, file.state, file.attempts) == (media_id, "pending", 0)

    assert await world.fetcher.run_once() == {"stored": 1}
    file = await world.file()
    sha = hashlib.sha256(JPEG).hexdigest()
    assert (file.state, file.sha256, file.size, file.mime) == (
        "stored",
        sha,
        len(JPEG),
        "image/jpeg",
    )
    assert file.original_name == "党日活动.jpg"  # kept for display; the store knows the sha
    assert await world.store.read(sha) == JPEG
    assert len(world.fake.calls(MEDIA_GET)) == 1


async def test_a_video_is_fetched_from_the_url_media_get_gives(world: World) -> None:
    media_id = world.fake.add_media(MP4, content_type="video/mp4", filename="v.mp4", video=True)
    await world.send("video", media_id)
    assert await world.fetcher.run_once() == {"stored": 1}
    file = await world.file()
    assert (file.mime, await world.store.read(file.sha256)) == ("video/mp4", MP4)


async def test_an_invalid_media_id_fails_at_once(world: World) -> None:
    await world.send("image", "expired-media-id")  # not on the platform: 40007
    assert await world.fetcher.run_once() == {"failed": 1}
    file = await world.file()
    assert (file.state, file.attempts) == ("failed", 1)
    assert "40007" in file.last_error
    world.clock.advance(days=1)
    assert await world.fetcher.run_once() == {}  # not tried again by itself


@pytest.mark.parametrize("fault", ["busy", "gateway"])
async def test_a_passing_fault_is_retried_with_backoff(world: World, fault: str) -> None:
    media_id = world.fake.add_media(JPEG, content_type="image/jpeg")
    if fault == "busy":
        world.fake.fail_next(MEDIA_GET, -1)
    else:
        world.fake.fail_http(MEDIA_GET, 502)
    await world.send("image", media_id)
    assert await world.fetcher.run_once() == {"retry": 1}
    file = await world.file()
    assert (file.state, file.attempts) == ("pending", 1)
    assert file.due_at > world.clock.now()
    assert await world.fetcher.run_once() == {}  # not due yet
    world.clock.advance(minutes=5)
    assert await world.fetcher.run_once() == {"stored": 1}
    assert (await world.file()).attempts == 2


async def test_after_the_last_try_it_fails_with_the_reason(world: World) -> None:
    media_id = world.fake.add_media(JPEG, content_type="image/jpeg")
    tries = world.settings.media_fetch_max_attempts
    world.fake.fail_next(MEDIA_GET, -1, times=tries)
    await world.send("image", media_id)
    for _ in range(tries):
        await world.fetcher.run_once()
        world.clock.advance(hours=2)
    file = await world.file()
    assert (file.state, file.attempts) == ("failed", tries)
    assert file.last_error == "-1 system error"
    assert len(world.fake.calls(MEDIA_GET)) == tries


async def test_a_timeout_is_retried(worlds: Worlds) -> None:
    world = await worlds(media_fetch_timeout_seconds=0.3)
    media_id = world.fake.add_media(JPEG, content_type="image/jpeg")
    world.fake.stall_next(MEDIA_GET)
    await world.send("image", media_id)
    assert await world.fetcher.run_once() == {"retry": 1}
    assert "Timeout" in (await world.file()).last_error
    world.clock.advance(minutes=5)
    assert await world.fetcher.run_once() == {"stored": 1}


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_an_oversized_body_is_refused_while_streaming(world: World, declared: bool) -> None:
    limit = world.settings.media_limits.image
    size = limit + 1
    block = JPEG[:64] + b"\x00" * (64 * 1024 - 64)
    produced: list[int] = []

    def body() -> Any:
        left = size
        while left > 0:
            produced.append(1)
            yield block[:left]
            left -= len(block)

    media_id = world.fake.add_media(
        content_type="image/jpeg", chunks=body, size=size if declared else None
    )
    await world.send("image", media_id)
    assert await world.fetcher.run_once() == {"failed": 1}
    file = await world.file()
    assert file.state == "failed"
    assert file.last_error == f"TooLarge: larger than {limit} bytes"
    assert file.sha256 == ""


async def test_a_body_that_is_not_what_its_type_says_is_refused(world: World) -> None:
    page = b"<html><body>504 Gateway Time-out</body></html>"
    media_id = world.fake.add_media(page, content_type="image/jpeg")
    await world.send("image", media_id)
    assert await world.fetcher.run_once() == {"failed": 1}
    assert (await world.file()).last_error == "Refused: the bytes are of no accepted type"
    png = world.fake.add_media(b"\x89PNG\r\n\x1a\n" + bytes(100), content_type="image/jpeg")
    await world.send("image", png)
    assert await world.fetcher.run_once() == {"failed": 1}
    assert "declared image/jpeg but the bytes are image/png" in (await world.file()).last_error


async def test_qq_pictures_are_fetched_by_url_following_http_redirects_only(
    world: World,
) -> None:
    await world.send("image", f"{world.files}moved", channel="qq")
    assert await world.fetcher.run_once() == {"stored": 1}
    assert (await world.file()).sha256 == hashlib.sha256(JPEG).hexdigest()
    await world.send("image", f"{world.files}sneaky", channel="qq")
    await world.send("image", "file:///etc/passwd", channel="qq")
    assert await world.fetcher.run_once() == {"failed": 2}
    errors = [file.last_error for _, file in (await world.rows())[1:]]
    assert errors == ["Unavailable: not an http(s) URL"] * 2


async def test_qq_urls_reach_public_addresses_only(
    worlds: Worlds, http: aiohttp.ClientSession
) -> None:
    """A URL from a message must not reach into the server's own network: an IP literal of
    the loopback, a name that resolves to it, or a redirect to it fails for good, with why."""
    world = await worlds(media_fetch_private_ok=False)
    port = URL(world.files).port
    async with public_web.fetching_session() as guarded:
        world.fetcher.http = guarded
        await world.send("image", f"http://127.0.0.1:{port}/pic.jpg", channel="qq")
        await world.send("image", f"http://localhost:{port}/pic.jpg", channel="qq")
        await world.send("image", f"http://[::ffff:127.0.0.1]:{port}/pic.jpg", channel="qq")
        assert await world.fetcher.run_once() == {"failed": 3}
    # A redirect is checked hop by hop: a name let through by a resolver that allows it,
    # then an IP literal of the loopback.
    world.fetcher.http = http
    await world.send("image", f"http://localhost:{port}/to-loopback", channel="qq")
    assert await world.fetcher.run_once() == {"failed": 1}
    errors = [file.last_error for _, file in await world.rows()]
    assert errors == [
        "Unavailable: not a public address: 127.0.0.1",
        "Unavailable: localhost resolves to no public address",
        "Unavailable: not a public address: ::ffff:7f00:1",  # as yarl writes it
        "Unavailable: not a public address: 127.0.0.1",
    ]
    assert all(file.attempts == 1 for _, file in await world.rows())  # not retried


async def test_nothing_is_fetched_twice(world: World) -> None:
    media_id = world.fake.add_media(JPEG, content_type="image/jpeg")
    other = world.fake.add_media(JPEG, content_type="image/jpeg")  # the same bytes again
    await world.send("image", media_id)
    assert await world.fetcher.run_once() == {"stored": 1}
    await world.send("image", media_id)  # the same media sent twice
    await world.send("image", other)
    assert await world.fetcher.run_once() == {"stored": 2}
    assert [c.query["media_id"] for c in world.fake.calls(MEDIA_GET)] == [media_id, other]
    shas = {file.sha256 for _, file in await world.rows()}
    assert shas == {hashlib.sha256(JPEG).hexdigest()}
    # A stored material is not fetched again, not even when failed ones are retried.
    assert await world.fetcher.retry_failed() == 0
    world.clock.advance(days=1)
    assert await world.fetcher.run_once() == {}
    assert len(world.fake.calls(MEDIA_GET)) == 2


async def test_failed_fetches_are_retried_on_demand(world: World) -> None:
    await world.send("image", "expired-media-id")
    assert await world.fetcher.run_once() == {"failed": 1}
    [(material, _)] = await world.rows()
    # The platform finds it after all (e.g. it was a transient mix-up on its side).
    world.fake.media["expired-media-id"] = world.fake.media[
        world.fake.add_media(JPEG, content_type="image/jpeg")
    ]
    assert await world.fetcher.retry_failed() == 1
    file = await world.file()
    assert (file.state, file.attempts, file.material_id) == ("pending", 0, material.id)
    assert await world.fetcher.run_once() == {"stored": 1}


async def test_a_file_fetched_by_one_process_is_read_by_another(
    world: World, database_url: str, media_settings: dict[str, object]
) -> None:
    media_id = world.fake.add_media(JPEG, content_type="image/jpeg")
    await world.send("image", media_id)
    assert await world.fetcher.run_once() == {"stored": 1}
    # The other server: an engine and a store of its own, on the same database and storage.
    engine = create_engine(database_url)
    try:
        store = await ready_store(media_settings)
        async with session_factory(engine)() as session:
            [material] = list(await session.exec(select(Material)))
            assert material.id is not None
            file = await material_files.file_of(session, material.id)
        assert file is not None and file.state == FetchState.STORED.value
        assert await store.read(file.sha256) == JPEG
    finally:
        await engine.dispose()


async def test_a_20_mb_video_is_fetched_with_memory_flat(
    sqlite_url: str,
    clock: FixedClock,
    tmp_path: Path,
    http: aiohttp.ClientSession,
    aiohttp_client: AppClientFactory,
) -> None:
    engine = create_engine(sqlite_url, inline=True)
    await migrate.upgrade(engine)
    try:
        media = {"media_dir": tmp_path / "media"}
        store = await ready_store(media)
        world = await make_world(sqlite_url, engine, clock, media, store, http, aiohttp_client)
        size = 20 * 1024 * 1024
        head = MP4[:24]
        block = head + bytes(64 * 1024 - len(head))
        digest = hashlib.sha256()
        left = size
        while left > 0:  # the expected digest, a block at a time
            digest.update(block[:left])
            left -= len(block)
        media_id = world.fake.add_media(
            content_type="video/mp4", video=True, chunks=repeated(block, size), size=size
        )
        await world.send("video", media_id)
        tracemalloc.start()
        try:
            assert await world.fetcher.run_once() == {"stored": 1}
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        file = await world.file()
        assert (file.size, file.sha256) == (size, digest.hexdigest())
        assert await store.size(file.sha256) == size
        # The fake server streams in this process too: the peak counts both ends.
        assert peak < size / 10, f"peak {peak} bytes"
    finally:
        await engine.dispose()


async def test_the_nightly_job_retries_the_recent_failures(world: World) -> None:
    jobs = PushJobs(world.settings, world.clock, world.fetcher.sessions, materials=world.fetcher)
    await world.send("image", "old-media-id")
    world.clock.advance(days=4)
    await world.send("image", "new-media-id")
    assert await world.fetcher.run_once() == {"failed": 2}
    for media_id in ("old-media-id", "new-media-id"):
        world.fake.media[media_id] = world.fake.media[
            world.fake.add_media(JPEG, content_type="image/jpeg")
        ]
    assert await jobs.retry_materials() == 1  # the one sent within 3 days, fetched now
    states = [file.state for _, file in await world.rows()]
    assert states == ["failed", "stored"]
