"""The ladder's WeChat rungs (bot/ladder.py): a customer-service message within the member's
48-hour window and its budget, and a template message for the kinds one is configured for.

The window's budget is spent by priority: each kind leaves some for more urgent ones
(`RESERVE`). 45015/45047 (window closed) and 45009 (the day's customer-service quota: sends
pause until midnight) pass the items on; 43004 (unfollowed) marks the WeChat binding
unreachable and passes them on, past the template rung too; -1 retries after the backoff;
a configuration error fails them and alerts the admins. A template refused for another
reason passes the item on (in the default order: to the mailbox).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bot import content_media
from bot.channels.outbound import Answer
from bot.channels.wechat_api import WeChatApi, WeChatApiError
from bot.clock import Clock
from bot.delivery import BUSY, CONFIGURATION, PASSING, CallFailed, Results
from bot.messages import cut_to_fit
from bot.settings import Settings
from content.texts import render
from data import platform_uploads
from data.db import Sessions, transaction
from data.media.store import MediaStore, NotStored
from data.models import Article, Binding, OutboxItem, OutboxState

if TYPE_CHECKING:
    from bot.dispatcher import Bundle

log = logging.getLogger(__name__)

CHANNEL = "wechat"
# Budget units a kind leaves for more urgent kinds: news needs 3 left, a lesson 2, a
# reminder or a review result 1 — the last message of a window is kept for what matters.
RESERVE = {0: 0, 1: 1, 2: 2}
WINDOW_CLOSED = frozenset({45015, 45047})
NOT_FOLLOWING = 43004
DAILY_QUOTA = 45009
INVALID_MEDIA = 40007  # a media id the platform no longer knows

Guard = Callable[[], Awaitable[None]]  # awaited right before a call; raises to call it off
# The dispatcher's call: one platform call in its turn, under its bounds.
Call = Callable[..., Awaitable[Any]]


class WeChatRungs:
    def __init__(
        self,
        api: WeChatApi,
        settings: Settings,
        call: Call,
        sessions: Sessions,
        clock: Clock,
        store: MediaStore | None = None,
    ) -> None:
        self.api = api
        self.settings = settings
        self.call = call
        self.sessions = sessions
        self.clock = clock
        self.store = store  # uploaded videos are sent from it as WeChat media
        self.uploading: dict[str, asyncio.Lock] = {}
        self.custom_paused_until: dt.datetime | None = None

    def _guard(self, results: Results, items: list[OutboxItem]) -> Guard:
        """Before a WeChat call: the items are still held, and the access token has not
        already failed this round (then the call fails alike, without asking again)."""

        async def guard() -> None:
            await results.holder.confirm(item.id for item in items if item.id is not None)
            if results.wechat_down is not None:
                raise CallFailed(results.wechat_down)

        return guard

    def window_left(self, binding: Binding, now: dt.datetime) -> int:
        if binding.window_until is None or binding.window_until <= now:
            return 0
        if self.custom_paused_until and now < self.custom_paused_until:
            return 0
        return max(0, binding.window_budget - binding.window_used)

    def usable(self, bundle: Bundle) -> bool:
        binding = bundle.binding
        return binding is not None and binding.reachable and CHANNEL not in bundle.lost

    async def window(
        self, bundle: Bundle, items: list[OutboxItem], results: Results
    ) -> list[OutboxItem]:
        """A customer-service message within the window, as long as the budget left exceeds
        what the item's kind keeps for more urgent ones."""
        if not self.usable(bundle):
            return items
        assert bundle.binding is not None
        left = self.window_left(bundle.binding, results.now)
        direct = [item for item in items if left > RESERVE[item.priority]]
        later = [item for item in items if item not in direct]
        if direct:
            later = await self._send_custom(bundle, direct, results) + later
        if later and not bundle.why:
            bundle.why = "outside the window"
        return later

    async def _send_custom(
        self, bundle: Bundle, items: list[OutboxItem], results: Results
    ) -> list[OutboxItem]:
        """One customer-service message for the bundle — a lone push of an article with a
        cover and a link as a 图文 card, of an uploaded 微视频 as its video, anything else as
        text; returns the items passed on."""
        assert bundle.binding is not None
        api, binding = self.api, bundle.binding
        text = items[0].text if len(items) == 1 else render("push_digest", items=items)
        text = cut_to_fit(text)
        article = bundle.article(items)
        public_url = self.settings.public_url
        form = content_media.push_form(public_url, article) if article else "text"
        if form == "video" and self.store is None:
            form = "text"
        sent_media: list[str] = []

        async def send() -> Answer | None:
            # Checked at the last moment: a 45009 met by another bundle while this one
            # waited for its turn stops it too.
            if self.custom_paused_until and results.now < self.custom_paused_until:
                return None
            if form == "news" and article is not None:
                cover = content_media.cover_url(public_url, article)
                lines = text.split("\n", 1)  # the card shows the title: the rest describes
                description = lines[1].strip() if len(lines) > 1 else article.summary
                return await api.send_news(
                    binding.external_id, article.title, description, article.url, cover
                )
            if form == "video" and article is not None:
                media_id = await self._video_media_id(article)
                if media_id is not None:
                    sent_media.append(media_id)
                    return await api.send_video(
                        binding.external_id, media_id, article.title, article.summary
                    )
            return await api.send_text(binding.external_id, text)

        try:
            answer = await self.call(send, self._guard(results, items))
        except CallFailed as failed:
            results.fail_all(items, "custom", failed.failure)
            return []
        if answer is None:
            return items
        method = form if sent_media or form == "news" else "custom"  # news | video
        for item in items:
            results.attempt(item, method, answer.ok, answer)
        if answer.errcode == INVALID_MEDIA and sent_media and article is not None:
            # The platform dropped the upload early: forget it, upload again next time.
            async with transaction(self.sessions) as session:
                await platform_uploads.forget(session, CHANNEL, article.video, sent_media[0])
            for item in items:
                results.retry(item, f"{answer.errcode} {answer.errmsg}")
            return []
        if answer.ok:
            used = binding.window_used + 1
            for item in items:
                results.finish(item, OutboxState.SENT)
            used += await self._send_pictures(binding, items, results, used)
            results.binding(binding, window_used=used)
            return []
        if answer.errcode in WINDOW_CLOSED:
            results.binding(binding, window_used=binding.window_budget)
            return items
        if answer.errcode == DAILY_QUOTA:
            self.custom_paused_until = _next_midnight(results.now)
            log.warning("customer-service quota spent; pausing until %s", self.custom_paused_until)
            return items
        return self._settle_error(bundle, items, answer, results)

    async def _video_media_id(self, article: Article) -> str | None:
        """The WeChat media id of the article's uploaded video: the last upload's while it is
        young enough, else a new upload — one at a time per file in this dispatcher (another
        process may upload it too: harmless). None when it cannot be sent as media (the file
        is missing, or WeChat refuses it for good): the text goes instead."""
        assert self.store is not None
        sha256 = article.video
        reuse = dt.timedelta(hours=self.settings.upload_reuse_hours)
        async with self.uploading.setdefault(sha256, asyncio.Lock()):
            async with self.sessions() as session:
                known = await platform_uploads.fresh(
                    session, CHANNEL, sha256, self.clock.now(), reuse
                )
            if known is not None:
                return known
            try:
                async with self.store.as_file(sha256) as path:
                    media_id = await self.api.upload_video(path)
            except NotStored:
                log.error("video of article %s is missing from the media store", article.id)
                return None
            except WeChatApiError as refused:
                if refused.errcode in PASSING or refused.errcode in CONFIGURATION:
                    raise
                log.error("WeChat refused the video of article %s: %s", article.id, refused)
                return None
            async with transaction(self.sessions) as session:
                await platform_uploads.remember(
                    session, CHANNEL, sha256, media_id, self.clock.now()
                )
            return media_id

    async def _send_pictures(
        self, binding: Binding, items: list[OutboxItem], results: Results, used: int
    ) -> int:
        """The pictures that go with the text just sent (a report's chart), while the budget
        allows one more message; returns how many were sent. A failure loses only the picture."""
        api = self.api
        sent = 0
        for path in dict.fromkeys(item.image for item in items if item.image):
            item = next(i for i in items if i.image == path)
            if binding.window_budget - used - sent <= RESERVE[item.priority]:
                break  # the rest of the budget is kept for what matters more
            try:
                media_id = await self.call(lambda p=path: api.upload_image(p))  # type: ignore[misc]
                answer = await self.call(lambda m=media_id: api.send_image(binding.external_id, m))  # type: ignore[misc]
            except CallFailed as failed:
                results.failed_call(item, "image", failed.failure)
                continue
            results.attempt(item, "image", answer.ok, answer)
            sent += int(answer.ok)
        return sent

    def _settle_error(
        self, bundle: Bundle, items: list[OutboxItem], answer: Answer, results: Results
    ) -> list[OutboxItem]:
        """A WeChat error answer: an unfollowed account passes the items on (returned); busy
        retries; anything else fails them (a configuration error also alerts the admins)."""
        error = f"{answer.errcode} {answer.errmsg}"
        if answer.errcode == NOT_FOLLOWING:
            assert bundle.binding is not None
            results.binding(bundle.binding, reachable=False)
            bundle.lost.add(CHANNEL)
            bundle.why = error
            return items
        for item in items:
            if answer.errcode == BUSY:
                results.retry(item, error)
            else:
                if answer.errcode in CONFIGURATION:
                    log.error("WeChat configuration error %s: no retry", error)
                    results.alerts.add(answer.errcode)
                results.finish(item, OutboxState.FAILED, error)
        return []

    async def template(
        self, bundle: Bundle, items: list[OutboxItem], results: Results
    ) -> list[OutboxItem]:
        """Template messages, for the kinds one is configured for; returns the items passed
        on (no template for the kind, refused, the account unfollowed)."""
        if not items or not self.usable(bundle):
            return items
        passed: list[OutboxItem] = []
        for item in items:
            if not self.settings.template_for(item.kind):
                bundle.why = "outside the window, no template configured"
                passed.append(item)
            elif CHANNEL in bundle.lost:
                passed.append(item)
            else:
                passed += await self._send_template(bundle, item, results)
        return passed

    async def _send_template(
        self, bundle: Bundle, item: OutboxItem, results: Results
    ) -> list[OutboxItem]:
        assert bundle.binding is not None
        api, binding = self.api, bundle.binding
        template = self.settings.template_for(item.kind)
        assert template
        data = {"thing1": item.brief[:20], "time2": results.now.strftime("%Y-%m-%d %H:%M")}
        try:
            answer = await self.call(
                lambda: api.send_template(binding.external_id, template, data, item.key),
                self._guard(results, [item]),
            )
        except CallFailed as failed:
            results.fail_all([item], "template", failed.failure)
            return []
        results.attempt(item, "template", answer.ok, answer)
        if answer.ok:
            results.finish(item, OutboxState.FALLBACK)
            return []
        if answer.errcode in (NOT_FOLLOWING, BUSY) or answer.errcode in CONFIGURATION:
            return self._settle_error(bundle, [item], answer, results)
        bundle.why = f"template refused: {answer.errcode} {answer.errmsg}"
        return [item]


def _next_midnight(now: dt.datetime) -> dt.datetime:
    return (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
