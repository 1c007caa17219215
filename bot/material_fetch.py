"""The durable fetch of materials' files: each round leases the due fetches, downloads each
file from its platform into the media store (checked and size-capped while it streams), and
settles the rows as stored, retried with backoff, or failed with the reason. Several
processes may run rounds at once: the lease keeps a fetch to one of them."""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections import Counter
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

import aiohttp

from bot.channels import media_download
from bot.channels.media_download import Download, Unavailable
from bot.channels.wechat_api import WeChatApi
from bot.clock import Clock
from bot.delivery import Holder, LeaseLost, classify
from bot.settings import Settings
from data import leases, material_files
from data.db import Sessions, transaction
from data.media import kinds
from data.media.store import MediaStore, Spooled, TooLarge
from data.models import FetchState, Material, MaterialFile

log = logging.getLogger(__name__)

BATCH = 4  # fetches leased at once: a few large files at most per lease
WECHAT = "wechat"
BY_URL = frozenset({"qq", "qqbot", "qqbot-group"})


@dataclass
class MaterialFetcher:
    settings: Settings
    clock: Clock
    sessions: Sessions
    store: MediaStore
    http: aiohttp.ClientSession  # for URLs from messages: `public_web.fetching_session`
    wechat: WeChatApi | None
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        settings = self.settings
        self.timeout = aiohttp.ClientTimeout(total=settings.media_fetch_timeout_seconds)
        # Long enough for every fetch of a batch to time out once; renewed as it goes.
        self.lease = dt.timedelta(seconds=settings.media_fetch_timeout_seconds * (BATCH + 1))
        self.retries = leases.Retries(
            settings.media_fetch_max_attempts, settings.media_fetch_backoff_seconds, self.rng
        )

    async def run_once(self) -> Counter[str]:
        """Fetch everything due now; how many fetches ended in each state (`retry`: again
        later)."""
        total: Counter[str] = Counter()
        while True:
            now = self.clock.now()
            async with transaction(self.sessions) as session:
                claimed = await material_files.claim_due(session, now, BATCH, self.lease)
            if not claimed:
                return total
            lease = leases.Lease.over(MaterialFile, [file for file, _ in claimed], now + self.lease)
            holder = Holder(self.sessions, self.clock, lease, self.lease)
            changes: list[leases.Change] = []
            for file, material in claimed:
                try:
                    await holder.confirm([file.id or 0])
                except LeaseLost:
                    changes.append(leases.given_back(file))
                    continue
                changes.append(await self._fetch(file, material))
            async with transaction(self.sessions) as session:
                held = await leases.settle(session, holder.lease, changes)
            total.update(
                "retry" if change["state"] == FetchState.PENDING.value else str(change["state"])
                for change in changes
                if change["id"] in held and "done_at" in change
            )

    async def retry_failed(self, sent_since: dt.datetime | None = None) -> int:
        """Failed fetches pending again (of materials sent since `sent_since`, if given)."""
        async with transaction(self.sessions) as session:
            return await material_files.retry_failed(session, self.clock.now(), sent_since)

    async def _fetch(self, file: MaterialFile, material: Material) -> leases.Change:
        """Fetch one file; the row's new values."""
        try:
            async with transaction(self.sessions) as session:
                copy = await material_files.stored_copy(session, material)
            if copy is not None:  # the same media sent again: stored already
                kept = {"sha256": copy.sha256, "size": copy.size, "mime": copy.mime}
                name = copy.original_name
            else:
                kept, name = await self._download(material)
        except Exception as problem:
            failure = classify(problem)
            log.warning(
                "material %s: fetch failed: %s",
                material.id,
                failure.detail,
                extra={"channel": material.channel, "material_id": material.id},
            )
            if failure.transient:
                return self.retries.after(file, self.clock.now(), failure.detail)
            done = leases.done(file, FetchState.FAILED, self.clock.now(), failure.detail)
            return done | {"attempts": file.attempts + 1}
        stored = leases.done(file, FetchState.STORED, self.clock.now())
        return stored | kept | {"original_name": name, "attempts": file.attempts + 1}

    async def _download(self, material: Material) -> tuple[dict[str, object], str]:
        limit = self.settings.media_limits.of(material.kind)
        async with self._source(material) as download:
            if download.length is not None and download.length > limit:
                raise TooLarge(limit)
            mime = ""

            def check(spooled: Spooled) -> None:
                nonlocal mime
                mime = kinds.check(material.kind, download.content_type, spooled.head, spooled.path)

            stored = await self.store.put(download.chunks, limit=limit, check=check)
        return {"sha256": stored.sha256, "size": stored.size, "mime": mime}, download.name

    def _source(self, material: Material) -> AbstractAsyncContextManager[Download]:
        if material.channel == WECHAT:
            if self.wechat is None:
                raise Unavailable("the WeChat API is not configured (QIYI_WECHAT_APPID)")
            return media_download.wechat_media(self.wechat, material.reference, self.timeout)
        if material.channel in BY_URL:
            public_only = not self.settings.media_fetch_private_ok
            return media_download.by_url(self.http, material.reference, self.timeout, public_only)
        raise Unavailable(f"no way to fetch a file from {material.channel}")
