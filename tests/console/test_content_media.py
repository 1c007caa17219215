"""内容's files: a cover picture and a 微视频's MP4 uploaded in the editor — checked by their
bytes and size (the field named in Chinese, nothing kept on a problem), kept by SHA-256,
versioned and restored with the rest; served at public content addresses only while a
published item uses them (no session needed, nothing else of the store reachable).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import ClientResponse
from sqlmodel import select

from bot.appkeys import CONVERSATION, MEDIA_STORE
from bot.clock import FixedClock
from bot.settings import Settings
from data.media.store import MediaStore
from data.models import Article, ArticleVersion
from tests.conftest import make_settings
from tests.console.conftest import AppClientFactory, Console, start_console
from tests.console.test_content_pages import LESSON, admin, article, count, created_id

PUBLIC = "http://party.example.org"  # http: the test browser keeps no Secure cookie
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 300
JPEG = b"\xff\xd8\xff\xe0" + b"\x02" * 300
MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8
PDF = b"%PDF-1.7\n" + b"\x03" * 300


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def settings(database_url: str, media_settings: dict[str, object]) -> Settings:
    return make_settings(database_url, public_url=PUBLIC, content_cover_max_mb=1, **media_settings)


@pytest.fixture
async def console(
    aiohttp_client: AppClientFactory, settings: Settings, clock: FixedClock, engine: Any
) -> Console:
    return await start_console(aiohttp_client, settings, clock)


@pytest.fixture
async def stranger(console: Console) -> AsyncIterator[aiohttp.ClientSession]:
    """A phone (or WeChat's picture fetcher) with no console session."""
    async with aiohttp.ClientSession(str(console.client.make_url(""))) as session:
        yield session


async def send(
    browser: Console,
    path: str,
    csrf: str,
    files: dict[str, tuple[str, bytes]] | None = None,
    **fields: str,
) -> ClientResponse:
    """The editor's multipart form, as a browser sends it: the token first, files last."""
    form = aiohttp.FormData()
    form.add_field("csrf", csrf)
    for name, value in fields.items():
        form.add_field(name, value)
    for name, (filename, data) in (files or {}).items():
        form.add_field(name, data, filename=filename, content_type="application/octet-stream")
    return await browser.client.post(path, data=form, allow_redirects=False)


def store_of(console: Console) -> MediaStore:
    return console.client.app[MEDIA_STORE]


async def test_uploads_are_checked_by_their_bytes_and_size_and_nothing_is_kept(
    console: Console,
) -> None:
    before = await count(console, Article)
    video = {**{k: v for k, v in LESSON.items() if not k.startswith(("quiz", "option"))}}
    video.update(kind="video", url="")
    browser, csrf = await admin(console)
    try:
        wrong = await send(
            browser, "/admin/content/new", csrf, {"cover": ("封面.jpg", PDF)}, **LESSON
        )
        wrong_page = await wrong.text()
        big = b"\x89PNG\r\n\x1a\n" + b"\x00" * (1024 * 1024)
        too_big = await send(
            browser, "/admin/content/new", csrf, {"cover": ("a.png", big)}, **LESSON
        )
        too_big_page = await too_big.text()
        named = await send(
            browser, "/admin/content/new", csrf, {"video": ("家书.mp4", PNG)}, **video
        )
        named_page = await named.text()
        forged = await send(
            browser, "/admin/content/new", "forged", {"cover": ("a.png", PNG)}, **LESSON
        )
    finally:
        await browser.client.session.close()
    assert wrong.status == 422
    assert re.search(r'id="problem-cover">不是 JPG、PNG 或 WebP 图片', wrong_page)
    assert 'value="学习新修订的支部工作条例"' in wrong_page  # what was typed is kept
    assert too_big.status == 422
    assert re.search(r'id="problem-cover">文件不能超过 1 MB', too_big_page)
    assert named.status == 422
    assert re.search(r'id="problem-video">不是 MP4 视频', named_page)
    assert forged.status == 403
    assert await count(console, Article) == before
    store = store_of(console)
    for data in (PDF, PNG, big):
        assert not await store.exists(sha(data))
    assert list(store.spool_dir.glob("spool-*")) == []  # no temporary file left behind


async def test_a_video_is_a_link_or_an_upload_and_only_a_videos(console: Console) -> None:
    video = {"kind": "video", "title": "红色家书", "summary": "三分钟", "body": "", "url": ""}
    video["publish_at"] = LESSON["publish_at"]
    browser, csrf = await admin(console)
    try:
        lesson_video = await send(
            browser, "/admin/content/new", csrf, {"video": ("v.mp4", MP4)}, **LESSON
        )
        lesson_page = await lesson_video.text()
        created = await send(
            browser, "/admin/content/new", csrf, {"video": ("v.mp4", MP4)}, **video
        )
        video_id = created_id(created)
    finally:
        await browser.client.session.close()
    assert lesson_video.status == 422
    assert re.search(r'id="problem-video">只有微视频可以上传视频文件', lesson_page)
    saved = await article(console, video_id)
    assert saved.video == sha(MP4) and saved.url == ""
    assert await store_of(console).read(sha(MP4)) == MP4
    reply = await console.chat.say("1001", "微视频")
    assert f"观看：{PUBLIC}/media/v/{sha(MP4)}.mp4" in reply


async def test_the_cover_is_kept_in_versions_and_restored(console: Console) -> None:
    browser, csrf = await admin(console)
    try:
        lesson_id = created_id(
            await send(browser, "/admin/content/new", csrf, {"cover": ("旧.png", PNG)}, **LESSON)
        )
        path = f"/admin/content/{lesson_id}"
        assert (await article(console, lesson_id)).cover == sha(PNG)
        replaced = await send(browser, path, csrf, {"cover": ("../../新.jpg", JPEG)}, **LESSON)
        assert replaced.headers["Location"] == f"{path}?saved=saved"
        now = await article(console, lesson_id)
        assert (now.cover, now.cover_mime) == (sha(JPEG), "image/jpeg")
        async with console.client.app[CONVERSATION].sessions() as session:
            [kept] = list(await session.exec(select(ArticleVersion)))
        assert sha(PNG) in kept.fields
        version_page = await (await browser.client.get(f"{path}/versions/{kept.id}")).text()
        assert f'src="{path}/files/{sha(PNG)}"' in version_page
        old = await browser.client.get(f"{path}/files/{sha(PNG)}")
        assert old.status == 200 and await old.read() == PNG
        assert old.headers["Content-Type"] == "image/png"
        restored = await browser.client.post(
            f"{path}/versions/{kept.id}/restore", data={"csrf": csrf}, allow_redirects=False
        )
        assert restored.headers["Location"] == f"{path}?saved=restored"
        assert (await article(console, lesson_id)).cover == sha(PNG)
        editor = await (await browser.client.get(path)).text()
        assert f'src="{path}/files/{sha(PNG)}"' in editor
        removed = await send(browser, path, csrf, remove_cover="1", **LESSON)
        assert removed.headers["Location"] == f"{path}?saved=saved"
        assert (await article(console, lesson_id)).cover == ""
        # A file the article never used is not served through it (a branch's material…).
        await store_of(console).put(_once(PDF), limit=10_000)
        assert (await browser.client.get(f"{path}/files/{sha(PDF)}")).status == 404
    finally:
        await browser.client.session.close()
    assert re.fullmatch(r"[0-9a-f]{64}", kept_cover := sha(PNG)) and kept_cover in kept.fields


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_the_preview_says_a_cover_with_a_link_goes_as_a_news_card(console: Console) -> None:
    browser, csrf = await admin(console)
    try:
        lesson = {**LESSON, "url": "https://example.org/l/1"}
        lesson_id = created_id(
            await send(browser, "/admin/content/new", csrf, {"cover": ("c.png", PNG)}, **lesson)
        )
        live = await browser.client.post(
            "/admin/content/preview", data={"csrf": csrf, "article": str(lesson_id), **lesson}
        )
        fragment = await live.text()
        plain = await browser.client.post(
            "/admin/content/preview", data={"csrf": csrf, "article": str(lesson_id), **LESSON}
        )
    finally:
        await browser.client.session.close()
    assert "图文消息" in fragment
    assert f'src="/admin/content/{lesson_id}/files/{sha(PNG)}"' in fragment
    assert "文字消息" in await plain.text()  # no link: the card would open nothing


async def test_public_media_only_for_published_items(
    console: Console, stranger: aiohttp.ClientSession
) -> None:
    browser, csrf = await admin(console)
    video = {"kind": "video", "title": "家书", "summary": "", "body": "", "url": ""}
    try:
        lesson_id = created_id(
            await send(browser, "/admin/content/new", csrf, {"cover": ("c.png", PNG)}, **LESSON)
        )
        later = {**LESSON, "title": "下周", "publish_at": "2026-12-30T08:00"}
        created_id(
            await send(browser, "/admin/content/new", csrf, {"cover": ("j.jpg", JPEG)}, **later)
        )
        video_id = created_id(
            await send(
                browser,
                "/admin/content/new",
                csrf,
                {"video": ("v.mp4", MP4)},
                publish_at=LESSON["publish_at"],
                **video,
            )
        )
        cover = await stranger.get(f"/media/c/{sha(PNG)}.png")
        assert cover.status == 200 and await cover.read() == PNG
        assert cover.headers["Content-Type"] == "image/png"
        assert cover.headers["X-Content-Type-Options"] == "nosniff"
        assert (await stranger.get(f"/media/c/{sha(PNG)}.jpg")).status == 404  # not its type
        assert (await stranger.get(f"/media/c/{sha(JPEG)}.jpg")).status == 404  # scheduled
        await store_of(console).put(_once(PDF), limit=10_000)
        for path in (
            f"/media/c/{sha(PDF)}.png",  # kept, but no article's cover
            f"/media/v/{sha(PNG)}.mp4",  # a cover is no video
            f"/media/c/{sha(PNG).upper()}.png",
            "/media/c/../../etc/passwd",
            "/media/c/%2e%2e%2f%2e%2e%2fetc%2fpasswd.png",
            f"/media/c/{sha(PNG)}.png/..%2f..%2fx",
        ):
            assert (await stranger.get(path)).status == 404, path
        whole = await stranger.get(f"/media/v/{sha(MP4)}.mp4")
        assert whole.status == 200 and await whole.read() == MP4
        ranged = await stranger.get(f"/media/v/{sha(MP4)}.mp4", headers={"Range": "bytes=4-11"})
        if store_of(console).local_path(sha(MP4)) is not None:
            assert ranged.status == 206 and await ranged.read() == MP4[4:12]
        else:  # object storage: the whole file, streamed
            assert ranged.status == 200 and await ranged.read() == MP4
        for item in (lesson_id, video_id):
            await browser.client.post(
                f"/admin/content/{item}/publish", data={"csrf": csrf, "shown": "0"}
            )
        assert (await stranger.get(f"/media/c/{sha(PNG)}.png")).status == 404
        assert (await stranger.get(f"/media/v/{sha(MP4)}.mp4")).status == 404
    finally:
        await browser.client.session.close()


def test_a_stored_path_never_comes_from_the_browser(tmp_path: Path) -> None:
    from data.media.directory import DirectoryStore

    store = DirectoryStore(tmp_path)
    with pytest.raises(ValueError):
        store.local_path("../../etc/passwd")


async def test_a_request_past_every_bound_is_refused_unread(console: Console) -> None:
    """Larger than the form and both files' limits together (1 + 10 MB here): refused from its
    length alone, the form shown again with the reason."""
    before = await count(console, Article)
    huge = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * (12 * 1024 * 1024)
    browser, csrf = await admin(console)
    try:
        response = await send(
            browser, "/admin/content/new", csrf, {"video": ("big.mp4", huge)}, **LESSON
        )
        page = await response.text()
    finally:
        await browser.client.session.close()
    assert response.status == 413
    assert re.search(r'id="problem-files">上传的文件太大（每个文件最多 10 MB）', page)
    assert await count(console, Article) == before
    assert not await store_of(console).exists(sha(huge))
