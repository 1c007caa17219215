"""Exactly one scheduler across processes and hosts.

On PostgreSQL the leader holds a session-level advisory lock on a connection of its own; if
the leader dies its connection closes, the lock is released, and another process takes it
at its next try (every `retry_seconds`, well within a minute). On SQLite the server runs as
one process only, so that process leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

LOCK_KEY = 0x51495949  # "QIYI"
RETRY_SECONDS = 20.0


class Leadership:
    """Runs `on_elected` when this process becomes the leader and `on_deposed` if it stops
    being one (its lock connection broke)."""

    def __init__(
        self,
        engine: AsyncEngine,
        on_elected: Callable[[], None],
        on_deposed: Callable[[], None],
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self.engine = engine
        self.on_elected = on_elected
        self.on_deposed = on_deposed
        self.retry_seconds = retry_seconds
        self.leading = False
        self._connection: AsyncConnection | None = None

    async def try_once(self) -> bool:
        """One election round: take the lock if free, or check that we still hold it."""
        if self.engine.dialect.name != "postgresql":
            if not self.leading:
                self._elected()
            return True
        if self.leading:
            if await self._still_holding():
                return True
            self._deposed()
        return await self._take()

    async def _take(self) -> bool:
        connection = await self.engine.connect()
        try:
            taken = (
                await connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}
                )
            ).scalar()
            await connection.commit()  # the lock is the session's; end the transaction
        except Exception:
            await connection.close()
            raise
        if not taken:
            await connection.close()
            return False
        self._connection = connection
        self._elected()
        return True

    async def _still_holding(self) -> bool:
        assert self._connection is not None
        try:
            await self._connection.execute(text("SELECT 1"))
            await self._connection.commit()
            return True
        except Exception:
            log.warning("lost the scheduler lock's connection")
            with contextlib.suppress(Exception):
                await self._connection.close()
            self._connection = None
            return False

    def _elected(self) -> None:
        self.leading = True
        log.info("this process runs the scheduler")
        self.on_elected()

    def _deposed(self) -> None:
        self.leading = False
        self.on_deposed()

    async def run(self, stop: asyncio.Event) -> None:
        """Hold or seek the lead every `retry_seconds` until `stop`, then resign."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.retry_seconds)
            if stop.is_set():
                break
            try:
                await self.try_once()
            except Exception:
                log.exception("scheduler election failed; trying again")
        await self.resign()

    async def resign(self) -> None:
        """Release the lock (at shutdown) so another process takes over at once."""
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY}
                )
                await self._connection.close()
            self._connection = None
        if self.leading:
            self._deposed()
