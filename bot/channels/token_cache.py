"""An access token shared by every process through the database, refreshed by one at a time."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

from bot.clock import Clock
from data import tokens
from data.db import Sessions, transaction

log = logging.getLogger(__name__)

REFRESH_MARGIN = dt.timedelta(minutes=5)
Fetch = Callable[[], Awaitable[tuple[str, int]]]  # -> (token, seconds it lives)


class TokenCache:
    """Single flight: one refresher per process (the lock) and, on PostgreSQL, one across
    processes (the token row stays locked while it is fetched). SQLite serves one process
    only, and its lock would stall every write for the length of an HTTP call."""

    def __init__(self, sessions: Sessions, clock: Clock, name: str, fetch: Fetch) -> None:
        self.sessions = sessions
        self.clock = clock
        self.name = name  # the row's key: the AppID
        self.fetch = fetch
        self._token: str | None = None
        self._expires_at = clock.now()
        self._lock = asyncio.Lock()

    def _fresh(self, expires_at: dt.datetime) -> bool:
        return expires_at - REFRESH_MARGIN > self.clock.now()

    async def get(self) -> str:
        if self._token and self._fresh(self._expires_at):
            return self._token
        return await self.refresh(stale=None)

    async def refresh(self, stale: str | None) -> str:
        """A token other than `stale`: the one in the database if still fresh, else a new one."""
        async with self._lock:
            if self._token and self._token != stale and self._fresh(self._expires_at):
                return self._token
            async with transaction(self.sessions) as session:
                row = await tokens.lock(session, self.name, self.clock.now())
                usable = row.token and row.token != stale and self._fresh(row.expires_at)
                current = (row.token, row.expires_at) if usable else None
                if current is None and session.get_bind().dialect.name == "postgresql":
                    current = await self._fetch()
                    row.token, row.expires_at = current
                    row.fetched_at = self.clock.now()
                    session.add(row)
            if current is None:
                current = await self._fetch()
                async with transaction(self.sessions) as session:
                    await tokens.store(session, self.name, *current, self.clock.now())
            self._token, self._expires_at = current
            return current[0]

    async def _fetch(self) -> tuple[str, dt.datetime]:
        token, lifetime = await self.fetch()
        log.info("access token refreshed", extra={"appid": self.name})
        return token, self.clock.now() + dt.timedelta(seconds=lifetime)
