"""The media store in a directory: `root/ab/cd/<sha256>`, written by rename."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

from data.media.store import MediaStore, NotStored, Spooled, fan_out, read_chunks


class DirectoryStore(MediaStore):
    def __init__(self, root: Path) -> None:
        # The spool folder is inside the root: the rename stays on one file system.
        super().__init__(root / "spool")
        self.root = root

    def _path(self, sha256: str) -> Path:
        return self.root / fan_out(sha256)

    async def open(self, sha256: str) -> AsyncIterator[bytes]:
        try:
            file = await asyncio.to_thread(self._path(sha256).open, "rb")
        except FileNotFoundError:
            raise NotStored(sha256) from None
        try:
            async for chunk in read_chunks(file):
                yield chunk
        finally:
            file.close()

    def local_path(self, sha256: str) -> Path | None:
        return self._path(sha256)

    async def exists(self, sha256: str) -> bool:
        return await asyncio.to_thread(self._path(sha256).is_file)

    async def size(self, sha256: str) -> int:
        try:
            stat = await asyncio.to_thread(self._path(sha256).stat)
        except FileNotFoundError:
            raise NotStored(sha256) from None
        return stat.st_size

    async def _keep(self, spooled: Spooled) -> None:
        target = self._path(spooled.sha256)

        def move() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            # Another process writing the same file renames the same bytes: last one wins.
            os.replace(spooled.path, target)

        await asyncio.to_thread(move)
