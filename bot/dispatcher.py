"""Sends what the outbox holds, within each platform's rules, and records every answer.

Claim (one transaction: lease whole bundles of due items, reserve WeCom's slots) → deliver
(each bundle climbs the delivery ladder, bot/ladder.py: API calls under a concurrency bound
and a rate limit; the lease is renewed as it goes) → apply (one transaction: states,
attempts, windows, mailbox, WeCom slots, for the rows still held). A rung that fails for
good for a member (43004 unfollowed, 81013 out of WeCom's range, QQ not a friend) passes the
items to the next rung in the same round; a transient failure retries the same rung later.
Whatever a call raises becomes a recorded attempt of the items it was for — retried with
backoff when it may pass, failed otherwise — and the other bundles go on. A dispatcher killed
between send and apply leaves its items leased; when the lease runs out they are due again
(at least once; template sends carry the outbox key as `client_msg_id`, WeCom sends a
duplicate check reaching back to the row's creation, so the platform drops a repeat).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

from sqlalchemy import insert, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.channels.onebot_api import OneBotApi, permanent
from bot.channels.wechat_api import WeChatApi
from bot.channels.wecom_api import WeComApi
from bot.clock import Clock, today
from bot.delivery import (
    CallFailed,
    Failure,
    Holder,
    LeaseLost,
    Results,
    classify,
)
from bot.ladder import Rung
from bot.pushes import ARTICLE_PUSHES
from bot.ratelimit import RateLimiter
from bot.settings import Settings
from bot.wechat_rungs import WeChatRungs
from bot.wecom_rung import Link, Reach, WeComRung, article_id
from content.texts import render
from data import articles, audience, groups, leases, members, outbox, wecom_quota
from data.db import Sessions, transaction
from data.media.store import MediaStore
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
WECOM_CHANNEL = "wecom"
BATCH_MEMBERS = 200
GROUP_BATCH = 50
# How long an item for an account no push reaches waits between looks (`_deliver_addressed`).
HOLD_FOR_REPLY = dt.timedelta(days=1)


@dataclass
class Bundle:
    member_id: int
    items: list[OutboxItem]
    binding: Binding | None  # WeChat
    qq: Binding | None = None
    in_group: bool = False  # the member's branch has a QQ group for lessons and news
    wecom: Reach = field(default_factory=Reach)
    bound_on: frozenset[str] = frozenset()  # the channels of the member's reachable bindings
    bound: bool = False  # the member has a binding at all (reachable or not)
    links: dict[int, Link] = field(default_factory=dict)  # article id → title and link
    lost: set[str] = field(default_factory=set)  # channels found unreachable this round
    why: str = ""  # why the last rung passed the items on
    # The articles the bundle's pushes of new lessons, news and videos are about, by id.
    articles: dict[int, Article] = field(default_factory=dict)

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
        wecom: WeComApi | None = None,
        store: MediaStore | None = None,  # uploaded videos are sent from it as WeChat media
    ) -> None:
        self.onebot = onebot
        self.order = settings.ladder
        self.settings = settings
        self.clock = clock
        self.sessions = sessions
        self.rng = rng or random.Random()
        self.lease = dt.timedelta(seconds=settings.delivery_lease_seconds)
        self.retries = leases.Retries(
            settings.delivery_max_attempts, settings.delivery_backoff_seconds, self.rng
        )
        self.limiter = RateLimiter(settings.delivery_rate, burst=settings.delivery_concurrency)
        self.slots = asyncio.Semaphore(settings.delivery_concurrency)
        self.wechat = (
            WeChatRungs(api, settings, self._call, sessions, clock, store)
            if api is not None
            else None
        )
        self.wecom = (
            WeComRung(wecom, lambda send, guard: self._call(send, guard, self.wecom_limiter))
            if wecom is not None
            else None
        )
        self.wecom_limiter = RateLimiter(
            settings.wecom_delivery_rate, burst=settings.delivery_concurrency
        )
        self.wecom_limits = wecom_quota.Limits(
            settings.wecom_member_per_minute,
            settings.wecom_member_per_hour,
            settings.wecom_daily_cap,
        )

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
            bound = await members.all_bindings_of(session, member_ids)
            grouped_branches: set[int] = set()
            branch_of: dict[int, int] = {}
            if self.onebot is not None:
                # A group whose stored id is not a number cannot be posted to: its members
                # get lessons and news privately instead.
                grouped_branches = {
                    g.branch_id
                    for g in await groups.on_channel(session, QQ_CHANNEL)
                    if groups.is_group_id(g.group_id)
                }
                branch_of = await members.branches_of(session, member_ids)
            grouped: dict[int, list[OutboxItem]] = {}
            for item in items:
                grouped.setdefault(item.member_id, []).append(item)
            bundles = []
            for mid in member_ids:
                by_channel = {binding.channel: binding for binding in bound.get(mid, [])}
                bundles.append(
                    Bundle(
                        mid,
                        grouped[mid],
                        by_channel.get(CHANNEL),
                        by_channel.get(QQ_CHANNEL) if self.onebot is not None else None,
                        branch_of.get(mid) in grouped_branches,
                        Reach(by_channel.get(WECOM_CHANNEL)),
                        frozenset(b.channel for b in by_channel.values() if b.reachable),
                        bool(by_channel),
                    )
                )
            if self.wecom is not None:
                await self._reserve_wecom(session, bundles, now)
            about = [
                number
                for item in items
                if PushKind(item.kind) in ARTICLE_PUSHES
                and (number := outbox.article_of(item)) is not None
            ]
            if about:
                shown = await articles.of_ids(session, about)
                for bundle in bundles:
                    bundle.articles = shown
        lease = leases.Lease.over(OutboxItem, items, now + self.lease)
        return bundles, Holder(self.sessions, self.clock, lease, self.lease)

    async def _reserve_wecom(
        self, session: AsyncSession, bundles: list[Bundle], now: dt.datetime
    ) -> None:
        """In the claim's transaction: a WeCom slot for each message a bundle may send on
        WeCom (one for its climb, one per item addressed to the WeCom account), and the
        links of the articles a text card would open."""
        wanted: dict[int, int] = {}
        for bundle in bundles:
            binding = bundle.wecom.binding
            if binding is None or not binding.reachable:
                continue
            pushed = [item for item in bundle.items if item.kind != PushKind.ALERT.value]
            addressed = [item for item in pushed if outbox.addressed_to(item) is not None]
            climbing = Rung.WECOM in self.order and len(addressed) < len(pushed)
            mine = sum(outbox.addressed_to(item) == WECOM_CHANNEL for item in addressed)
            if climbing or mine:
                wanted[bundle.member_id] = int(climbing) + mine
        if not wanted:
            return
        local = now.astimezone(self.settings.zone)
        day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        slots = await wecom_quota.reserve(session, wanted, now, day_start, self.wecom_limits)
        articles = {
            number
            for bundle in bundles
            if bundle.member_id in wanted
            for item in bundle.items
            if (number := article_id(item)) is not None
        }
        links: dict[int, Link] = {}
        if articles:
            statement = select(Article.id, Article.title, Article.url).where(
                col(Article.id).in_(sorted(articles)), Article.url != ""
            )
            links = {
                int(number): Link(title, url)
                for number, title, url in await session.exec(statement)
            }
        for bundle in bundles:
            mid = bundle.member_id
            bundle.wecom.slots = slots.granted.get(mid, [])
            bundle.wecom.frees_at = slots.frees_at.get(mid)
            bundle.wecom.capped = mid in slots.capped
            bundle.links = links

    async def _call(
        self,
        send: Callable[[], Awaitable[T]],
        guard: Guard | None = None,
        limiter: RateLimiter | None = None,
    ) -> T:
        """One platform call in its turn (paced by `limiter`, the WeChat API's by default);
        whatever it raises comes out as `CallFailed` (or `LeaseLost`, when the guard finds the
        items are no longer this dispatcher's)."""
        async with self.slots:
            await (limiter or self.limiter).acquire()
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
        finally:
            results.released.extend(bundle.wecom.slots)  # the WeCom slots no send took
            bundle.wecom.slots = []

    async def _deliver(self, bundle: Bundle, results: Results) -> None:
        alerts = [item for item in bundle.items if item.kind == PushKind.ALERT.value]
        for item in alerts:
            results.to_mailbox(item, "alerts wait for the admin's next message")
        items = [item for item in bundle.items if item not in alerts]
        for item in [item for item in items if outbox.addressed_to(item) is not None]:
            items.remove(item)
            await self._deliver_addressed(bundle, item, results)
        if items:
            await self._climb(bundle, items, results)

    async def _climb(self, bundle: Bundle, items: list[OutboxItem], results: Results) -> None:
        """The delivery ladder: each rung takes the items it can and passes the rest on; the
        mailbox takes what is left — unless no account of the member's is reachable any more
        (they unfollowed everywhere): then the items are skipped, as nothing would show them."""
        for rung in self.order:
            if not items:
                return
            if rung == Rung.WECHAT_WINDOW and self.wechat is not None:
                items = await self.wechat.window(bundle, items, results)
            elif rung == Rung.WECOM and self.wecom is not None:
                items = await self.wecom.deliver(bundle, items, results)
            elif rung == Rung.QQ:
                items = await self._qq_rung(bundle, items, results)
            elif rung == Rung.WECHAT_TEMPLATE and self.wechat is not None:
                items = await self.wechat.template(bundle, items, results)
        self._last_rung(bundle, items, results)

    def _last_rung(self, bundle: Bundle, items: list[OutboxItem], results: Results) -> None:
        if bundle.bound and not (bundle.bound_on - bundle.lost):
            tried = {attempt["outbox_id"] for attempt in results.attempts}
            for item in items:
                error = bundle.why or "not following"
                if item.id not in tried:
                    results.attempt(item, "none", False, None, error)
                results.finish(item, OutboxState.SKIPPED, error)
            return
        why = bundle.why or ("no push reaches the member now" if bundle.bound else "no account")
        for item in items:
            results.to_mailbox(item, why)

    async def _deliver_addressed(self, bundle: Bundle, item: OutboxItem, results: Results) -> None:
        """An item for one account of the member's (a security notice): through that account
        or not at all — never through another, which may be the impostor's."""
        channel = outbox.addressed_to(item)
        wechat, qq = bundle.binding, bundle.qq
        if (
            channel == CHANNEL
            and self.wechat is not None
            and wechat is not None
            and wechat.reachable
        ):
            rest = await self.wechat.window(bundle, [item], results)
            rest = await self.wechat.template(bundle, rest, results)
            if rest and CHANNEL in bundle.lost:
                results.finish(item, OutboxState.SKIPPED, bundle.why)
            elif rest:
                results.to_mailbox(item, bundle.why)
            return
        rung: list[OutboxItem] | None = None  # what the account's rung passed on
        if channel == QQ_CHANNEL and self.onebot is not None and qq is not None and qq.reachable:
            rung = await self._qq_rung(replace(bundle, in_group=False), [item], results)
        elif channel == WECOM_CHANNEL and self.wecom is not None:
            rung = await self.wecom.deliver(bundle, [item], results)
        if rung == []:
            return
        # No push reaches that account (the official QQ bot sends nothing unsolicited):
        # the item waits, pending, for the account's next message to fold it in
        # (`outbox.waiting_for`), looked at again daily until the tries run out.
        why = f"waits for a message from the {channel} account"
        results.attempt(item, "reply", False, None, why)
        results.retry(item, why, delay=HOLD_FOR_REPLY)

    async def _qq_rung(
        self, bundle: Bundle, items: list[OutboxItem], results: Results
    ) -> list[OutboxItem]:
        """A QQ member: lessons and news reach them in their branch group; the rest privately.
        Returns the items passed on (the account cannot be messaged: not a friend)."""
        qq = bundle.qq
        if self.onebot is None or qq is None or not qq.reachable:
            return items
        onebot = self.onebot
        private: list[OutboxItem] = []
        for item in items:
            if bundle.in_group and PushKind(item.kind) in ARTICLE_PUSHES:
                results.attempt(item, "qq-group", True, None, "posted in the branch group")
                results.finish(item, OutboxState.SKIPPED, "posted in the branch group")
            else:
                private.append(item)
        if not private:
            return []
        text = private[0].text if len(private) == 1 else render("push_digest", items=private)
        ids = [item.id for item in private if item.id is not None]
        try:
            answer = await self._call(
                lambda: onebot.send_private(
                    qq.external_id, text, lambda: results.holder.confirm(ids)
                )
            )
        except CallFailed as failed:
            results.fail_all(private, "qq", failed.failure)
            return []
        for item in private:
            results.attempt(item, "qq", answer.ok, answer)
        if answer.ok:
            for item in private:
                results.finish(item, OutboxState.SENT)
            return []
        error = f"{answer.errcode} {answer.errmsg}"
        if permanent(answer):  # this account cannot be messaged: the next rung, now (the
            # member may still write from it: the binding stays, the mailbox reaches them)
            bundle.why = error
            return private
        for item in private:
            results.retry(item, error)
        return []

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
            await wecom_quota.release(session, results.released)


async def _alert_admins(session: AsyncSession, clock: Clock, errcodes: set[int]) -> None:
    """Tell every admin, once a day per problem, through their mailbox."""
    now = clock.now()
    text = render("alert_configuration", errcodes=sorted(errcodes))
    ref = "wechat-" + "-".join(map(str, sorted(errcodes)))
    day = today(clock)
    admins = await audience.admins(session)
    pushes = [Push(admin, PushKind.ALERT, ref, day, text, text, now) for admin in admins]
    await outbox.enqueue(session, pushes, now)
