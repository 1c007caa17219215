"""资料 from the chat to the console on each media store (a directory; S3 on moto's server on
loopback): a secretary's picture is fetched by the durable job from the fake WeChat API and
shown in the gallery — its thumbnail made from the stored file, the original served from the
store — and a file fetched by one server is shown by another on the same database and
storage (several machines share S3)."""

from __future__ import annotations

import hashlib
import io
import re
import uuid
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestClient
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import create_app, wechat_api_for
from bot.appkeys import CONVERSATION, MEDIA_STORE, SESSIONS
from bot.clock import FixedClock
from bot.material_fetch import MaterialFetcher
from bot.messages import Inbound, InboundKind, Media
from data.media.s3 import S3Store
from data.media.store import MediaStore
from tests.conftest import Chat, make_settings
from tests.console.conftest import AppClientFactory, Console, start_console
from tests.fakes.wechat_api import MEDIA_GET, FakeWeChat

CAPTION = "主题党日活动照片"


def photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1600, 1200), (30, 90, 160)).save(out, format="JPEG")
    return out.getvalue()


async def fetching_console(
    aiohttp_client: AppClientFactory,
    database_url: str,
    clock: FixedClock,
    media_settings: dict[str, object],
) -> tuple[Console, FakeWeChat]:
    """A console on the real app whose media store is the backend's, and the fake WeChat
    API its materials are fetched from."""
    fake = FakeWeChat()
    platform = await aiohttp_client(fake.app())
    settings = make_settings(
        database_url,
        wechat_appid=fake.appid,
        wechat_secret=fake.secret,
        wechat_api_base=str(platform.make_url("")).rstrip("/"),
        **media_settings,
    )
    return await start_console(aiohttp_client, settings, clock), fake


async def send_picture(console: Console, fake: FakeWeChat, data: bytes) -> None:
    """The secretary of 第一党支部 captions a material and sends a picture over WeChat."""
    wechat = Chat(console.client.app[CONVERSATION], channel="wechat")
    await wechat.bind("1003")
    assert "请在 10 分钟内发送图片或视频" in await wechat.say("1003", f"资料 {CAPTION}")
    media_id = fake.add_media(data, content_type="image/jpeg", filename="合影.jpg")
    inbound = Inbound(
        wechat.sender("1003"),
        uuid.uuid4().hex,
        InboundKind.MEDIA,
        console.clock.now(),
        media=(Media("image", media_id),),
    )
    assert "本支部本月共" in await wechat.conversation.respond(inbound)


async def fetch_all(client: TestClient, store: MediaStore) -> None:
    """The fetch job of this server, run once (the scheduler runs it every minute)."""
    app = client.app
    settings = app[CONVERSATION].settings
    sessions = app[SESSIONS]
    async with aiohttp.ClientSession() as http:
        api = wechat_api_for(settings, http, sessions, app[CONVERSATION].clock)
        fetcher = MaterialFetcher(settings, app[CONVERSATION].clock, sessions, store, http, api)
        assert await fetcher.run_once() == {"stored": 1}


async def shown_in_gallery(browser: Console, sha256: str, original: bytes) -> None:
    """The admin finds the picture in 第一党支部's gallery with its caption, its thumbnail
    made on the server and its original as sent."""
    overview = await (await browser.client.get("/admin/materials")).text()
    assert "第一党支部" in overview and ">1 份</strong>" in overview
    found = re.search(r'branch=(\d+)&amp;month=[\d-]+">第一党支部<', overview)
    assert found, overview
    branch = found.group(1)
    page = await (await browser.client.get(f"/admin/materials?branch={branch}")).text()
    assert CAPTION in page and "王芳" in page
    thumb_path = page.split('<img src="', 1)[1].split('"', 1)[0]
    assert thumb_path.endswith("/thumb")
    thumb = await browser.client.get(thumb_path)
    assert thumb.status == 200 and thumb.content_type == "image/jpeg"
    assert Image.open(io.BytesIO(await thumb.read())).size == (320, 240)
    response = await browser.client.get(thumb_path.removesuffix("/thumb") + "/file")
    assert response.status == 200 and response.content_type == "image/jpeg"
    assert response.headers["Content-Disposition"].startswith("inline")
    body = await response.read()
    assert body == original and hashlib.sha256(body).hexdigest() == sha256


def kept_where_configured(
    store: MediaStore, media_settings: dict[str, object], sha256: str
) -> None:
    """On S3 the file is in the bucket and nowhere on this machine (the spool is emptied)."""
    media_dir = media_settings["media_dir"]
    assert isinstance(media_dir, Path)
    local = [p for p in media_dir.rglob("*") if p.is_file()] if media_dir.exists() else []
    if media_settings.get("media_s3_url"):
        assert isinstance(store, S3Store)
        assert local == []
    else:
        assert [p.name for p in local] == [sha256]


async def test_a_picture_sent_by_chat_is_fetched_into_the_store_and_shown(
    aiohttp_client: AppClientFactory,
    database_url: str,
    clock: FixedClock,
    engine: AsyncEngine,
    media_settings: dict[str, object],
) -> None:
    console, fake = await fetching_console(aiohttp_client, database_url, clock, media_settings)
    original = photo()
    await send_picture(console, fake, original)
    store = console.client.app[MEDIA_STORE]
    await fetch_all(console.client, store)
    sha256 = hashlib.sha256(original).hexdigest()
    assert await store.read(sha256) == original
    kept_where_configured(store, media_settings, sha256)

    await console.sign_in("9001")
    await shown_in_gallery(console, sha256, original)
    assert len(fake.calls(MEDIA_GET)) == 1  # shown from the store, not the platform


async def test_a_file_fetched_by_one_server_is_shown_by_another(
    aiohttp_client: AppClientFactory,
    database_url: str,
    clock: FixedClock,
    engine: AsyncEngine,
    media_settings: dict[str, object],
) -> None:
    fetching, fake = await fetching_console(aiohttp_client, database_url, clock, media_settings)
    original = photo()
    await send_picture(fetching, fake, original)
    await fetch_all(fetching.client, fetching.client.app[MEDIA_STORE])

    # The other server: an app of its own (engine, store client, thumbnail cache) on the
    # same database and storage; it has never seen the file.
    other_app = create_app(fetching.client.app[CONVERSATION].settings, clock, background=False)
    other = Console(await aiohttp_client(other_app), fetching.chat, clock)
    assert other.client.app[MEDIA_STORE] is not fetching.client.app[MEDIA_STORE]
    await other.sign_in("9001")  # its code confirmed through the first server's chat
    await shown_in_gallery(other, hashlib.sha256(original).hexdigest(), original)
    assert len(fake.calls(MEDIA_GET)) == 1
