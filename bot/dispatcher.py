"""Sends what the outbox holds, within WeChat's rules, and records every answer.

Claim (one transaction: lease whole bundles of due items) → deliver (API calls under a
concurrency bound and a rate limit; the lease is renewed as it goes) → apply (one
transaction: states, attempts, windows, mailbox, for the rows still held). Whatever a call
raises becomes a recorded attempt of the items it was for — retried with backoff when it
may pass, failed otherwise — and the other bundles go on. A dispatcher killed between send
and apply leaves its items leased; when the lease runs out they are due again (at least
once; template sends carry the outbox key as `client_msg_id`, so the platform drops a
repeat).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from sqlalchemy import insert, update
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import content_media
from bot.channels.onebot_api import OneBotApi
from bot.channels.outbound import Answer
from bot.channels.wechat_api import WeChatApi, WeChatApiError
from bot.clock import Clock, today
from bot.delivery import (
    BUSY,
    CONFIGURATION,
    PASSING,
    CallFailed,
    Failure,
    Holder,
    LeaseLost,
    Results,
    classify,
)
from bot.messages import cut_to_fit
from bot.pushes import ARTICLE_PUSHES
from bot.ratelimit import RateLimiter
from bot.settings import Settings
from content.texts import render
from data import articles, audience, groups, leases, members, outbox, platform_uploads
from data.db import Sessions, transaction
from data.media.store import MediaStore, NotStored
from data.models import (
    Article,
    Binding,
    DeliveryAttempt,
    GroupPost,
    MailboxItem,
    OutboxItem,
    OutboxState,
    PushKind,
)
from data.outbox import Push

log = logging.getLogger(__name__)
T = TypeVar("T")

CHANNEL = "wechat"
QQ_CHANNEL = "qq"
BATCH_MEMBERS = 200
# Budget units a kind leaves for more urgent kinds: news needs 3 left, a lesson 2, a
# reminder or a review result 1 — the last message of a window is kept for what matters.
RESERVE = {0: 0, 1: 1, 2: 2}
WINDOW_CLOSED = frozenset({45015, 45047})
NOT_FOLLOWING = 43004
DAILY_QUOTA = 45009
GROUP_BATCH = 50
# How long an item for an account no push reaches waits between looks (`_deliver_addressed`).
HOLD_FOR_REPLY = dt.timedelta(days=1)
INVALID_MEDIA = 40007  # a media id the platform no longer knows


@dataclass
class Bundle:
    member_id: int
    items: list[OutboxItem]
    binding: Binding | None  # WeChat
    qq: Binding | None = None
    in_group: bool = False  # the member's branch has a QQ group for lessons and news
    # The articles the bundle's pushes of new lessons, news and videos are about, by id.
    articles: dict[int, Article] = dataclasses.field(default_factory=dict)

    def article(self, items: list[OutboxItem]) -> Article | None:
        """The article of a lone push of an article (a bundle of several is sent as text)."""
        if len(items) != 1 or PushKind(items[0].kind) not in ARTICLE_PUSHES:
            return None
        number = outbox.article_of(items[0])
        return self.articles.get(number) if number is not None else None


Guard = Callable[[], Awaitable[None]]  # awaited right before a call; raises to call it off


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        sessions: Sessions,
        api: WeChatApi | None,
        rng: random.Random | None = None,
        onebot: OneBotApi | None = None,
        store: MediaStore | None = None,
    ) -> None:
        self.onebot = onebot
        self.store = store  # uploaded videos are sent from it as WeChat media
        self.uploading: dict[str, asyncio.Lock] = {}
        self.settings = settings
        self.clock = clock
        self.sessions = sessions
        self.api = api
        self.rng = rng or random.Random()
        self.lease = dt.timedelta(seconds=settings.delivery_lease_seconds)
        self.retries = leases.Retries(
            settings.delivery_max_attempts, settings.delivery_backoff_seconds, self.rng
        )
        self.limiter = RateLimiter(settings.delivery_rate, burst=settings.delivery_concurrency)
        self.slots = asyncio.Semaphore(settings.delivery_concurrency)
        self.custom_paused_until: dt.datetime | None = None

    async def run_once(self, progress: Callable[[int], None] | None = None) -> Counter[str]:
        """Deliver everything due now; returns how many items ended in each state."""
        total: Counter[str] = Counter()
        if self.onebot is not None:
            total.update(await self._post_to_groups())
        while claimed := await self._claim():
            bundles, holder = claimed
            results = Results(self.clock.now(), holder, self.retries)
            await asyncio.gather(*(self._deliver_safely(bundle, results) for bundle in bundles))
            await self._apply(results)
            total.update(results.counts)
            if progress:
                progress(sum(len(bundle.items) for bundle in bundles))
        return total

    async def run_forever(self, stop: asyncio.Event, idle_seconds: float = 1.0) -> None:
        """The loop inside `qiyi serve`: deliver, then wait a moment or until told to stop."""
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("dispatcher round failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=idle_seconds)

    # --- QQ group posts ---------------------------------------------------------------------

    async def _post_to_groups(self) -> Counter[str]:
        """Lessons and news for the branches' QQ groups, one at a time (paced by the API)."""
        done: Counter[str] = Counter()
        while True:
            now = self.clock.now()
            async with transaction(self.sessions) as session:
                posts = await groups.claim_due(session, now, GROUP_BATCH, self.lease)
            if not posts:
                return done
            lease = leases.Lease.over(GroupPost, posts, now + self.lease)
            holder = Holder(self.sessions, self.clock, lease, self.lease)
            changes = [await self._post(post, holder) for post in posts]
            async with transaction(self.sessions) as session:
                held = await leases.settle(session, holder.lease, changes)
            done.update(
                "retry" if c["state"] == "pending" else str(c["state"])
                for c in changes
                if c["id"] in held and "done_at" in c
            )

    async def _post(self, post: GroupPost, holder: Holder) -> leases.Change:
        """Send one group post; the row's new values."""
        assert self.onebot is not None and post.id is not None
        onebot = self.onebot
        post_id = post.id
        failure: Failure | None = None
        if not groups.is_group_id(post.group_id):  # stored before ids were checked
            failure = Failure(False, f"not a QQ group number: {post.group_id!r}")
        else:
            try:
                answer = await self._call(
                    lambda: onebot.send_group(
                        post.group_id, post.text, post.image, lambda: holder.confirm([post_id])
                    )
                )
            except LeaseLost:
                return leases.given_back(post)  # settled only if still held after all
            except CallFailed as failed:
                failure = failed.failure
            else:
                if not answer.ok:
                    failure = Failure(True, f"{answer.errcode} {answer.errmsg}", answer.errcode)
        now = self.clock.now()
        if failure is None:
            return leases.done(post, OutboxState.SENT, now)
        log.warning("group post %s failed: %s", post.key, failure.detail)
        if failure.transient:
            return self.retries.after(post, now, failure.detail)
        return leases.done(post, OutboxState.FAILED, now, failure.detail)

    # --- members' pushes --------------------------------------------------------------------

    async def _claim(self) -> tuple[list[Bundle], Holder] | None:
        now = self.clock.now()
        async with transaction(self.sessions) as session:
            items = await outbox.claim_due(session, now, BATCH_MEMBERS, self.lease)
            if not items:
                return None
            member_ids = sorted({item.member_id for item in items})
            wechat = await members.bindings_of(session, member_ids, CHANNEL)
            qq: dict[int, Binding] = {}
            grouped_branches: set[int] = set()
            branch_of: dict[int, int] = {}
            if self.onebot is not None:
                qq = await members.bindings_of(session, member_ids, QQ_CHANNEL)
                # A group whose stored id is not a number cannot be posted to: its members
                # get lessons and news privately instead.
                grouped_branches = {
                    g.branch_id
                    for g in await groups.on_channel(session, QQ_CHANNEL)
                    if groups.is_group_id(g.group_id)
                }
                branch_of = await members.branches_of(session, member_ids)
            about = [
                number
                for item in items
                if PushKind(item.kind) in ARTICLE_PUSHES
                and (number := outbox.article_of(item)) is not None
            ]
            shown = await articles.of_ids(session, about)
        grouped: dict[int, list[OutboxItem]] = {}
        for item in items:
            grouped.setdefault(item.member_id, []).append(item)
        bundles = [
            Bundle(
                mid,
                grouped[mid],
                wechat.get(mid),
                qq.get(mid),
                branch_of.get(mid) in grouped_branches,
                shown,
            )
            for mid in member_ids
        ]
        lease = leases.Lease.over(OutboxItem, items, now + self.lease)
        return bundles, Holder(self.sessions, self.clock, lease, self.lease)

    async def _call(self, send: Callable[[], Awaitable[T]], guard: Guard | None = None) -> T:
        """One platform call in its turn; whatever it raises comes out as `CallFailed` (or
        `LeaseLost`, when the guard finds the items are no longer this dispatcher's)."""
        async with self.slots:
            await self.limiter.acquire()
            if guard is not None:
                await guard()
            try:
                return await send()
            except (LeaseLost, CallFailed):
                raise
            except Exception as problem:
                failure = classify(problem)
                if not failure.transient:
                    log.error("send failed for good: %s", failure.detail, exc_info=problem)
                raise CallFailed(failure) from problem

    def _wechat_guard(self, results: Results, items: list[OutboxItem]) -> Guard:
        """Before a WeChat call: the items are still held, and the access token has not
        already failed this round (then the call fails alike, without asking again)."""

        async def guard() -> None:
            await results.holder.confirm(item.id for item in items if item.id is not None)
            if results.wechat_down is not None:
                raise CallFailed(results.wechat_down)

        return guard

    def _failed(
        self, results: Results, items: list[OutboxItem], method: str, failure: Failure
    ) -> None:
        if failure.token and results.wechat_down is None:
            log.error("no WeChat access token: %s", failure.detail)
            results.wechat_down = failure
        for item in items:
            results.fail(item, method, failure)

    async def _deliver_safely(self, bundle: Bundle, results: Results) -> None:
        """Deliver one bundle; no exception leaves an item of it unsettled."""
        try:
            await self._deliver(bundle, results)
        except LeaseLost:
            # Another dispatcher took (some of) these rows over: what is still held goes back
            # to pending untried; the rest is the other's to send.
            for item in bundle.items:
                if item.id not in results.settled and results.holder.holds(item.id):
                    results.give_back(item)
        except Exception as problem:
            failure = classify(problem)
            log.exception("delivery to member %s failed", bundle.member_id)
            for item in bundle.items:
                if item.id not in results.settled:
                    results.fail(item, "dispatch", failure)

    def _window_left(self, binding: Binding, now: dt.datetime) -> int:
        if binding.window_until is None or binding.window_until <= now:
            return 0
        if self.custom_paused_until and now < self.custom_paused_until:
            return 0
        return max(0, binding.window_budget - binding.window_used)

    async def _deliver(self, bundle: Bundle, results: Results) -> None:
        binding = bundle.binding
        alerts = [item for item in bundle.items if item.kind == PushKind.ALERT.value]
        for item in alerts:
            results.to_mailbox(item, "alerts wait for the admin's next message")
        items = [item for item in bundle.items if item not in alerts]
        for item in [item for item in items if outbox.addressed_to(item) is not None]:
            items.remove(item)
            await self._deliver_addressed(bundle, item, results)
        if not items:
            return
        wechat_ready = self.api is not None and binding is not None and binding.reachable
        if not wechat_ready and bundle.qq is not None and bundle.qq.reachable and self.onebot:
            await self._deliver_qq(bundle, bundle.qq, items, results)
            return
        if binding is None or self.api is None:
            for item in items:
                results.to_mailbox(item, "no WeChat account to push to")
            return
        if not binding.reachable:
            for item in items:
                results.attempt(item, "custom", False, None, "not following")
                results.finish(item, OutboxState.SKIPPED, "not following")
            return
        await self._deliver_wechat(binding, items, results, bundle)

    async def _deliver_wechat(
        self,
        binding: Binding,
        items: list[OutboxItem],
        results: Results,
        bundle: Bundle | None = None,
    ) -> None:
        left = self._window_left(binding, results.now)
        direct = [item for item in items if left > RESERVE[item.priority]]
        later = [item for item in items if item not in direct]
        if direct:
            article = bundle.article(direct) if bundle is not None else None
            later = await self._send_custom(binding, direct, results, article) + later
        for item in later:
            await self._fallback(binding, item, results)

    async def _deliver_addressed(self, bundle: Bundle, item: OutboxItem, results: Results) -> None:
        """An item for one account of the member's (a security notice): through that account
        or not at all — never through another, which may be the impostor's."""
        channel = outbox.addressed_to(item)
        wechat, qq = bundle.binding, bundle.qq
        if channel == CHANNEL and self.api is not None and wechat is not None and wechat.reachable:
            await self._deliver_wechat(wechat, [item], results)
        elif channel == QQ_CHANNEL and self.onebot is not None and qq is not None and qq.reachable:
            await self._deliver_qq(replace(bundle, in_group=False), qq, [item], results)
        else:
            # No push reaches that account (the official QQ bot sends nothing unsolicited):
            # the item waits, pending, for the account's next message to fold it in
            # (`outbox.waiting_for`), looked at again daily until the tries run out.
            why = f"waits for a message from the {channel} account"
            results.attempt(item, "reply", False, None, why)
            results.retry(item, why, delay=HOLD_FOR_REPLY)

    async def _deliver_qq(
        self, bundle: Bundle, qq: Binding, items: list[OutboxItem], results: Results
    ) -> None:
        """A QQ member: lessons and news reach them in their branch group; the rest privately."""
        assert self.onebot is not None
        onebot = self.onebot
        private: list[OutboxItem] = []
        for item in items:
            if bundle.in_group and PushKind(item.kind) in ARTICLE_PUSHES:
                results.attempt(item, "qq-group", True, None, "posted in the branch group")
                results.finish(item, OutboxState.SKIPPED, "posted in the branch group")
            else:
                private.append(item)
        if not private:
            return
        text = private[0].text if len(private) == 1 else render("push_digest", items=private)
        ids = [item.id for item in private if item.id is not None]
        try:
            answer = await self._call(
                lambda: onebot.send_private(
                    qq.external_id, text, lambda: results.holder.confirm(ids)
                )
            )
        except CallFailed as failed:
            self._failed(results, private, "qq", failed.failure)
            return
        for item in private:
            results.attempt(item, "qq", answer.ok, answer)
            if answer.ok:
                results.finish(item, OutboxState.SENT)
            else:
                results.retry(item, f"{answer.errcode} {answer.errmsg}")

    async def _send_custom(
        self,
        binding: Binding,
        items: list[OutboxItem],
        results: Results,
        article: Article | None = None,
    ) -> list[OutboxItem]:
        """One customer-service message for the bundle — a lone push of an article with a
        cover and a link as a 图文 card, of an uploaded 微视频 as its video, anything else as
        text; returns the items left to fall back."""
        assert self.api is not None
        api = self.api
        text = items[0].text if len(items) == 1 else render("push_digest", items=items)
        text = cut_to_fit(text)
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
            answer = await self._call(send, self._wechat_guard(results, items))
        except CallFailed as failed:
            self._failed(results, items, "custom", failed.failure)
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
        self._settle_error(binding, items, answer, results)
        return []

    async def _video_media_id(self, article: Article) -> str | None:
        """The WeChat media id of the article's uploaded video: the last upload's while it is
        young enough, else a new upload — one at a time per file in this dispatcher (another
        process may upload it too: harmless). None when it cannot be sent as media (the file
        is missing, or WeChat refuses it for good): the text goes instead."""
        assert self.api is not None and self.store is not None
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
        assert self.api is not None
        api = self.api
        sent = 0
        for path in dict.fromkeys(item.image for item in items if item.image):
            item = next(i for i in items if i.image == path)
            if binding.window_budget - used - sent <= RESERVE[item.priority]:
                break  # the rest of the budget is kept for what matters more
            try:
                media_id = await self._call(lambda p=path: api.upload_image(p))  # type: ignore[misc]
                answer = await self._call(lambda m=media_id: api.send_image(binding.external_id, m))  # type: ignore[misc]
            except CallFailed as failed:
                results.attempt(item, "image", False, None, failed.failure.detail)
                continue
            results.attempt(item, "image", answer.ok, answer)
            sent += int(answer.ok)
        return sent

    def _settle_error(
        self, binding: Binding, items: list[OutboxItem], answer: Answer, results: Results
    ) -> None:
        error = f"{answer.errcode} {answer.errmsg}"
        for item in items:
            if answer.errcode == NOT_FOLLOWING:
                results.binding(binding, reachable=False)
                results.finish(item, OutboxState.SKIPPED, error)
            elif answer.errcode == BUSY:
                results.retry(item, error)
            else:
                if answer.errcode in CONFIGURATION:
                    log.error("WeChat configuration error %s: no retry", error)
                    results.alerts.add(answer.errcode)
                results.finish(item, OutboxState.FAILED, error)

    async def _fallback(self, binding: Binding, item: OutboxItem, results: Results) -> None:
        """Outside the window or budget: a template message if configured, else the mailbox."""
        assert self.api is not None
        api = self.api
        template = self.settings.template_for(item.kind)
        if not template:
            results.to_mailbox(item, "outside the window, no template configured")
            return
        data = {"thing1": item.brief[:20], "time2": results.now.strftime("%Y-%m-%d %H:%M")}
        try:
            answer = await self._call(
                lambda: api.send_template(binding.external_id, template, data, item.key),
                self._wechat_guard(results, [item]),
            )
        except CallFailed as failed:
            self._failed(results, [item], "template", failed.failure)
            return
        results.attempt(item, "template", answer.ok, answer)
        if answer.ok:
            results.finish(item, OutboxState.FALLBACK)
        elif answer.errcode in (NOT_FOLLOWING, BUSY) or answer.errcode in CONFIGURATION:
            self._settle_error(binding, [item], answer, results)
        else:
            results.to_mailbox(item, f"template refused: {answer.errcode} {answer.errmsg}")

    async def _apply(self, results: Results) -> None:
        """One transaction: the rows still held get their new state (a row another
        dispatcher took over meanwhile is its to settle); every attempt made is recorded."""
        async with transaction(self.sessions) as session:
            held = await leases.settle(session, results.holder.lease, results.items)
            if results.attempts:
                await session.exec(insert(DeliveryAttempt), params=results.attempts)
            if results.bindings:
                await session.exec(update(Binding), params=list(results.bindings.values()))
            mailbox = [row for item_id, row in results.mailbox if item_id in held]
            if mailbox:
                await session.exec(insert(MailboxItem), params=mailbox)
            if results.alerts:
                await _alert_admins(session, self.clock, results.alerts)


async def _alert_admins(session: AsyncSession, clock: Clock, errcodes: set[int]) -> None:
    """Tell every admin, once a day per problem, through their mailbox."""
    now = clock.now()
    text = render("alert_configuration", errcodes=sorted(errcodes))
    ref = "wechat-" + "-".join(map(str, sorted(errcodes)))
    day = today(clock)
    admins = await audience.admins(session)
    pushes = [Push(admin, PushKind.ALERT, ref, day, text, text, now) for admin in admins]
    await outbox.enqueue(session, pushes, now)


def _next_midnight(now: dt.datetime) -> dt.datetime:
    return (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
