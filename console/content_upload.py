"""Reading the content editor's form: its fields, and the files it may carry (a cover
picture, a 微视频's MP4) — each spooled to a temporary file within its own size limit and
checked by its bytes, never held whole in memory, never named by what the browser said.

The form's CSRF token comes before its files (the editor's first field); a file met
before the token is checked is refused, so nothing is written for a forged request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from aiohttp import BodyPartReader, web

from bot import content_media
from bot.content_editing import Files, Problem
from console.staff import Staff, check_csrf
from data.media.store import MediaStore, Spooled, TooLarge, spool

# The text fields of an article: its body is 20,000 characters, 9 bytes each when encoded.
FORM_BYTES = 256 * 1024
MULTIPART_OVERHEAD = 16 * 1024  # the parts' headers
MB = 1024 * 1024
FILE_FIELDS = ("cover", "video")


class TooLargeRequest(Exception):
    """The request is larger than the form and the largest files together."""


@dataclass
class Upload:
    spooled: Spooled
    mime: str


@dataclass
class Posted:
    """What the editor sent: its text fields, the files accepted, the files' problems."""

    form: dict[str, str]
    uploads: dict[str, Upload] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def files(self, current: Files) -> Files:
        """The article's files after this form: new uploads replace, a ticked 删除 removes."""
        cover, cover_mime, video = current.cover, current.cover_mime, current.video
        if self.form.get("remove_cover") == "1":
            cover, cover_mime = "", ""
        if self.form.get("remove_video") == "1":
            video = ""
        if "cover" in self.uploads:
            upload = self.uploads["cover"]
            cover, cover_mime = upload.spooled.sha256, upload.mime
        if "video" in self.uploads:
            video = self.uploads["video"].spooled.sha256
        return Files(cover, cover_mime, video)

    async def keep(self, store: MediaStore) -> None:
        """Put the accepted files in the media store (the form passed every check)."""
        for upload in self.uploads.values():
            await store.keep(upload.spooled)

    async def discard(self) -> None:
        for upload in self.uploads.values():
            await asyncio.to_thread(upload.spooled.path.unlink, missing_ok=True)


async def read(
    request: web.Request, staff: Staff, store: MediaStore, limits: dict[str, int]
) -> Posted:
    """The editor's form (url-encoded, or multipart with files up to `limits` bytes each);
    the CSRF token checked before any file is read. The caller discards the uploads."""
    if request.content_type != "multipart/form-data":
        form = await request.clone(client_max_size=FORM_BYTES).post()
        fields = {key: str(value) for key, value in form.items() if isinstance(value, str)}
        check_csrf(staff, request.headers.get("X-CSRF-Token") or fields.get("csrf", ""))
        return Posted(fields)
    most = FORM_BYTES + sum(limits.values()) + MULTIPART_OVERHEAD
    if request.content_length is None or request.content_length > most:
        raise TooLargeRequest()
    posted = Posted({})
    checked = False
    text_bytes = 0
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or not part.name:
                continue
            if part.name in FILE_FIELDS and part.filename is not None:
                if not checked:
                    check_csrf(staff, posted.form.get("csrf", ""))
                    checked = True
                await _file(part, part.name, store, limits[part.name], posted)
                continue
            value = bytearray()
            while chunk := await part.read_chunk():
                value.extend(chunk)
                if text_bytes + len(value) > FORM_BYTES:
                    raise TooLargeRequest()
            text_bytes += len(value)
            posted.form[part.name] = value.decode("utf-8", "replace")
    except ValueError:  # a broken multipart body
        await posted.discard()
        raise web.HTTPBadRequest(text="broken form") from None
    except BaseException:
        await posted.discard()
        raise
    if not checked:
        check_csrf(staff, posted.form.get("csrf", ""))
    return posted


async def _file(
    part: BodyPartReader, name: str, store: MediaStore, limit: int, posted: Posted
) -> None:
    """Spool one file part and check its bytes; a problem names the field."""

    async def chunks() -> AsyncIterator[bytes]:
        while chunk := await part.read_chunk():
            yield chunk

    try:
        spooled = await spool(chunks(), store.spool_dir, limit)
    except TooLarge:
        posted.problems.append(Problem(name, "too_large", limit // MB))
        return
    if spooled.size == 0:  # the field left empty: the browser sends a nameless empty part
        await asyncio.to_thread(spooled.path.unlink, missing_ok=True)
        return
    check: Callable[[Spooled], object] = (
        content_media.cover_type if name == "cover" else content_media.check_video
    )
    try:
        mime = check(spooled)
    except content_media.Refused as refused:
        await asyncio.to_thread(spooled.path.unlink, missing_ok=True)
        posted.problems.append(Problem(name, refused.code))
        return
    posted.uploads[name] = Upload(spooled, str(mime) if name == "cover" else "video/mp4")
