"""One storage interface for materials' files, two backends (`directory`, `s3`).

A file is put as a stream: it is written to a temporary file while its SHA-256 is computed
and its size counted (over the limit, the write stops at once), checked, then moved or
uploaded under its address — the hex digest. Never held whole in memory; a file already
kept is not written again. Addresses are the only names: nothing from outside becomes a
path or a key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from data.media.kinds import HEAD_BYTES

CHUNK_BYTES = 64 * 1024
ADDRESS = re.compile(r"[0-9a-f]{64}")


class TooLarge(Exception):
    """The stream passed the size limit (nothing was kept)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than {limit} bytes")
        self.limit = limit


class NotStored(Exception):
    """No file is kept under that address."""


@dataclass(frozen=True)
class Spooled:
    """A stream written to a temporary file: where, its digest, size and first bytes."""

    path: Path
    sha256: str
    size: int
    head: bytes


@dataclass(frozen=True)
class Stored:
    """What `put` kept: the address and the size (and whether it was there already)."""

    sha256: str
    size: int
    existed: bool


Check = Callable[[Spooled], object]  # raises to refuse the file before it is kept


def address_of(sha256: str) -> str:
    """`sha256` when it is an address (64 lower-case hex digits); ValueError otherwise."""
    if not ADDRESS.fullmatch(sha256):
        raise ValueError("not a media address")
    return sha256


def fan_out(sha256: str) -> str:
    """`ab/cd/abcd…`: two levels of 256 folders keep each folder small."""
    address = address_of(sha256)
    return f"{address[:2]}/{address[2:4]}/{address}"


async def spool(chunks: AsyncIterable[bytes], folder: Path, limit: int) -> Spooled:
    """Write the stream to a new temporary file in `folder`, hashing as it goes; TooLarge
    (and no file left) once it passes `limit` bytes."""
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    handle, name = await asyncio.to_thread(tempfile.mkstemp, dir=folder, prefix="spool-")
    path = Path(name)
    digest = hashlib.sha256()
    size = 0
    head = b""
    try:
        with os.fdopen(handle, "wb") as file:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise TooLarge(limit)
                if len(head) < HEAD_BYTES:
                    head += chunk[: HEAD_BYTES - len(head)]
                digest.update(chunk)
                await asyncio.to_thread(file.write, chunk)
    except BaseException:
        path.unlink(missing_ok=True)  # noqa: ASYNC240 (also when cancelled: no await here)
        raise
    return Spooled(path, digest.hexdigest(), size, head)


async def read_chunks(file: IO[bytes]) -> AsyncIterator[bytes]:
    """A file's content, a chunk at a time, read off the event loop."""
    while chunk := await asyncio.to_thread(file.read, CHUNK_BYTES):
        yield chunk


class MediaStore(ABC):
    """Files by content address. `spool_dir` holds the temporary files being written."""

    def __init__(self, spool_dir: Path) -> None:
        self.spool_dir = spool_dir

    async def put(
        self, chunks: AsyncIterable[bytes], *, limit: int, check: Check | None = None
    ) -> Stored:
        """Keep the stream (at most `limit` bytes) under its SHA-256, after `check` accepted
        it; a file kept before is not written again."""
        spooled = await spool(chunks, self.spool_dir, limit)
        try:
            if check is not None:
                await asyncio.to_thread(check, spooled)
            return await self.keep(spooled)
        finally:
            await asyncio.to_thread(spooled.path.unlink, missing_ok=True)

    async def keep(self, spooled: Spooled) -> Stored:
        """Keep a file spooled (and checked) before, unless it is kept already; the caller
        removes the spooled file afterwards."""
        existed = await self.exists(spooled.sha256)
        if not existed:
            await self._keep(spooled)
        return Stored(spooled.sha256, spooled.size, existed)

    @contextlib.asynccontextmanager
    async def as_file(self, sha256: str) -> AsyncIterator[Path]:
        """The file on disk for the duration: where the directory store keeps it, or a
        temporary copy of what object storage keeps (removed after); NotStored if none."""
        path = self.local_path(sha256)
        if path is not None:
            if not await asyncio.to_thread(path.is_file):
                raise NotStored(sha256)
            yield path
            return
        copy = await spool(self.open(sha256), self.spool_dir, limit=2**62)
        try:
            yield copy.path
        finally:
            await asyncio.to_thread(copy.path.unlink, missing_ok=True)

    def local_path(self, sha256: str) -> Path | None:
        """The file on this machine's disk, when the store is a directory (a web server can
        then answer range requests from it); None for object storage."""
        return None

    async def read(self, sha256: str) -> bytes:
        """The whole file (for small files and tests; serve large ones with `open`)."""
        return b"".join([chunk async for chunk in self.open(sha256)])

    @abstractmethod
    def open(self, sha256: str) -> AsyncIterator[bytes]:
        """The file's content in chunks; NotStored when there is none."""

    @abstractmethod
    async def exists(self, sha256: str) -> bool: ...

    @abstractmethod
    async def size(self, sha256: str) -> int:
        """The file's size in bytes; NotStored when there is none."""

    @abstractmethod
    async def _keep(self, spooled: Spooled) -> None:
        """Move or copy the spooled file under its address (atomically: all or nothing)."""


def open_store(media_dir: Path, s3_url: str | None) -> MediaStore:
    """The S3 store when `s3_url` is set (temporary files still go to `media_dir`), else
    the directory store at `media_dir`."""
    from data.media.directory import DirectoryStore

    if s3_url:
        from data.media.s3 import S3Store

        return S3Store.from_url(s3_url, media_dir / "spool")
    return DirectoryStore(media_dir)
