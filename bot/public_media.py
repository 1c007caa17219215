"""The public media addresses (no console session): a published article's cover picture
and uploaded video, for members' phones and WeChat's servers to fetch.

Only a file a published article uses is served — an unpublished, scheduled or replaced
one, or any other file in the store (materials are private), is a 404. The address is the
file's SHA-256, matched by the route's pattern: nothing else reaches the store. Videos
answer range requests (players seek with them): from the file on disk with the directory
store, streamed whole from object storage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiohttp import web

from bot.appkeys import MEDIA_STORE, SESSIONS
from bot.clock import Clock
from bot.content_media import COVER_PATH, COVER_TYPES, VIDEO_EXTENSION, VIDEO_PATH
from data import articles
from data.media.store import MediaStore, NotStored
from data.models import Article

CLOCK = web.AppKey("public_media_clock", Clock)
SHA256 = r"{sha256:[0-9a-f]{64}}"
EXTENSIONS = "|".join(COVER_TYPES.values())
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # Short: a file taken down stops being served within minutes, caches included.
    "Cache-Control": "public, max-age=300",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


async def _published(request: web.Request, *, video: bool) -> Article:
    sha256 = request.match_info["sha256"]
    async with request.app[SESSIONS]() as session:
        article = await articles.published_with_media(
            session, sha256, request.app[CLOCK].now(), video=video
        )
    if article is None:
        raise web.HTTPNotFound()
    return article


async def cover(request: web.Request) -> web.StreamResponse:
    article = await _published(request, video=False)
    if COVER_TYPES.get(article.cover_mime) != request.match_info["extension"]:
        raise web.HTTPNotFound()
    return await _send(request, article.cover, article.cover_mime)


async def video(request: web.Request) -> web.StreamResponse:
    article = await _published(request, video=True)
    return await _send(request, article.video, "video/mp4")


async def _send(request: web.Request, sha256: str, mime: str) -> web.StreamResponse:
    return await send_file(request, request.app[MEDIA_STORE], sha256, mime, HEADERS)


async def send_file(
    request: web.Request,
    store: MediaStore,
    sha256: str,
    mime: str,
    headers: Mapping[str, str],
) -> web.StreamResponse:
    """A stored file with `headers`: from the disk (with ranges) when the store is a
    directory, else streamed whole, never held in memory; 404 when it is not kept."""
    path = store.local_path(sha256)
    if path is not None:
        if not await asyncio.to_thread(path.is_file):
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={**headers, "Content-Type": mime})
    chunks = store.open(sha256)
    try:
        first = await anext(chunks, b"")
    except NotStored:
        raise web.HTTPNotFound() from None
    response = web.StreamResponse(headers={**headers, "Content-Type": mime})
    try:
        response.content_length = await store.size(sha256)
    except NotStored:
        raise web.HTTPNotFound() from None
    await response.prepare(request)
    await response.write(first)
    async for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


def add_routes(app: web.Application, clock: Clock) -> None:
    app[CLOCK] = clock
    app.router.add_get(f"{COVER_PATH}{SHA256}.{{extension:{EXTENSIONS}}}", cover)
    app.router.add_get(f"{VIDEO_PATH}{SHA256}.{VIDEO_EXTENSION}", video)
