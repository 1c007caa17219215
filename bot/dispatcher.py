"""Sends what the outbox holds, within WeChat's rules, and records every answer.

Claim (one transaction: lease whole bundles of due items) → deliver (no database work:
API calls under a concurrency bound and a rate limit) → apply (one transaction: states,
attempts, windows, mailbox). A dispatcher killed between send and apply leaves its items
leased; when the lease runs out they are due again (at least once; template sends carry
the outbox key as `client_msg_id`, so the platform drops a repeat).
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
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.channels.onebot_api import OneBotApi
from bot.channels.outbound import Answer, TransientError
from bot.channels.wechat_api import WeChatApi, WeChatApiError
from bot.clock import Clock, today
from bot.messages import cut_to_fit
from bot.ratelimit import RateLimiter
from bot.settings import Settings
from content.texts import render
from data import audience, groups, members, outbox
from data.db import Sessions, transaction
from data.models import (
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
CONFIGURATION = frozenset({40164, 48001})
BUSY = -1
# How long an item for an account no push reaches waits between looks (`_deliver_addressed`).
HOLD_FOR_REPLY = dt.timedelta(days=1)


@dataclass
class Bundle:
    member_id: int
    items: list[OutboxItem]
    binding: Binding | None  # WeChat
    qq: Binding | None = None
    in_group: bool = False  # the member's branch has a QQ group for lessons and news


@dataclass
class Results:
    """What delivery decided; written in one transaction afterwards."""

    now: dt.datetime
    items: list[dict[str, object]] = field(default_factory=list)
    attempts: list[dict[str, object]] = field(default_factory=list)
    bindings: dict[int, dict[str, object]] = field(default_factory=dict)
    mailbox: list[dict[str, object]] = field(default_factory=list)
    alerts: set[int] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)

    def attempt(
        self, item: OutboxItem, method: str, ok: bool, answer: Answer | None, detail: str = ""
    ) -> None:
        self.attempts.append(
            {
                "outbox_id": item.id,
                "at": self.now,
                "method": method,
                "ok": ok,
                "errcode": answer.errcode if answer else None,
                "detail": (detail or (answer.errmsg if answer else ""))[:300],
            }
        )

    def finish(
        self, item: OutboxItem, state: OutboxState, error: str = "", **extra: object
    ) -> None:
        self.items.append(
            {
                "id": item.id,
                "state": state.value,
                "lease_until": None,
                "done_at": self.now if state is not OutboxState.PENDING else None,
                "last_error": error[:300],
                **extra,
            }
        )
        self.counts["retry" if state is OutboxState.PENDING else state.value] += 1

    def to_mailbox(self, item: OutboxItem, why: str) -> None:
        self.mailbox.append(
            {"member_id": item.member_id, "text": item.brief, "created_at": self.now}
        )
        self.attempt(item, "mailbox", True, None, why)
        self.finish(item, OutboxState.MAILBOX)

    def binding(self, binding: Binding, **changes: object) -> None:
        self.bindings.setdefault(binding.id or 0, {"id": binding.id}).update(changes)


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        sessions: Sessions,
        api: WeChatApi | None,
        rng: random.Random | None = None,
        onebot: OneBotApi | None = None,
    ) -> None:
        self.onebot = onebot
        self.settings = settings
        self.clock = clock
        self.sessions = sessions
        self.api = api
        self.rng = rng or random.Random()
        self.lease = dt.timedelta(seconds=settings.delivery_lease_seconds)
        self.limiter = RateLimiter(settings.delivery_rate, burst=settings.delivery_concurrency)
        self.slots = asyncio.Semaphore(settings.delivery_concurrency)
        self.custom_paused_until: dt.datetime | None = None

    async def run_once(self, progress: Callable[[int], None] | None = None) -> Counter[str]:
        """Deliver everything due now; returns how many items ended in each state."""
        total: Counter[str] = Counter()
        if self.onebot is not None:
            total.update(await self._post_to_groups())
        while bundles := await self._claim():
            now = self.clock.now()
            results = Results(now)
            await asyncio.gather(*(self._deliver(bundle, results) for bundle in bundles))
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

    async def _post_to_groups(self) -> Counter[str]:
        """Lessons and news for the branches' QQ groups, one at a time (paced by the API)."""
        done: Counter[str] = Counter()
        while True:
            async with transaction(self.sessions) as session:
                posts = await groups.claim_due(session, self.clock.now(), 50, self.lease)
            if not posts:
                return done
            changes = [await self._post(post) for post in posts]
            done.update("retry" if c["state"] == "pending" else str(c["state"]) for c in changes)
            async with transaction(self.sessions) as session:
                await session.exec(update(GroupPost), params=changes)

    async def _post(self, post: GroupPost) -> dict[str, object]:
        """Send one group post; the row's new values."""
        assert self.onebot is not None
        onebot = self.onebot
        try:
            answer = await self._call(
                lambda: onebot.send_group(post.group_id, post.text, post.image)
            )
            error = "" if answer.ok else f"{answer.errcode} {answer.errmsg}"
        except TransientError as problem:
            error = str(problem)
        now = self.clock.now()
        change: dict[str, object] = {"id": post.id, "lease_until": None, "last_error": error}
        attempts = post.attempts + 1
        if not error:
            return change | {"state": OutboxState.SENT.value, "done_at": now}
        if attempts >= self.settings.delivery_max_attempts:
            return change | {
                "state": OutboxState.FAILED.value,
                "done_at": now,
                "attempts": attempts,
            }
        return change | {
            "state": OutboxState.PENDING.value,
            "attempts": attempts,
            "due_at": now + self._backoff(attempts),
        }

    def _backoff(self, attempts: int) -> dt.timedelta:
        """Exponential from QIYI_DELIVERY_BACKOFF_SECONDS, with ±50% jitter."""
        seconds = self.settings.delivery_backoff_seconds * 2 ** (attempts - 1)
        return dt.timedelta(seconds=seconds * self.rng.uniform(0.5, 1.5))

    async def _claim(self) -> list[Bundle]:
        async with transaction(self.sessions) as session:
            items = await outbox.claim_due(session, self.clock.now(), BATCH_MEMBERS, self.lease)
            if not items:
                return []
            member_ids = sorted({item.member_id for item in items})
            wechat = await members.bindings_of(session, member_ids, CHANNEL)
            qq: dict[int, Binding] = {}
            grouped_branches: set[int] = set()
            branch_of: dict[int, int] = {}
            if self.onebot is not None:
                qq = await members.bindings_of(session, member_ids, QQ_CHANNEL)
                grouped_branches = {
                    g.branch_id for g in await groups.on_channel(session, QQ_CHANNEL)
                }
                branch_of = await members.branches_of(session, member_ids)
        grouped: dict[int, list[OutboxItem]] = {}
        for item in items:
            grouped.setdefault(item.member_id, []).append(item)
        return [
            Bundle(
                mid,
                grouped[mid],
                wechat.get(mid),
                qq.get(mid),
                branch_of.get(mid) in grouped_branches,
            )
            for mid in member_ids
        ]

    async def _call(self, send: Callable[[], Awaitable[T]]) -> T:
        async with self.slots:
            await self.limiter.acquire()
            return await send()

    def _retry(self, results: Results, item: OutboxItem, error: str) -> None:
        attempts = item.attempts + 1
        if attempts >= self.settings.delivery_max_attempts:
            results.finish(item, OutboxState.FAILED, error, attempts=attempts)
            return
        results.finish(
            item,
            OutboxState.PENDING,
            error,
            attempts=attempts,
            due_at=results.now + self._backoff(attempts),
        )

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
        await self._deliver_wechat(binding, items, results)

    async def _deliver_wechat(
        self, binding: Binding, items: list[OutboxItem], results: Results
    ) -> None:
        left = self._window_left(binding, results.now)
        direct = [item for item in items if left > RESERVE[item.priority]]
        later = [item for item in items if item not in direct]
        if direct:
            later = await self._send_custom(binding, direct, results) + later
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
            attempts = item.attempts + 1
            why = f"waits for a message from the {channel} account"
            results.attempt(item, "reply", False, None, why)
            if attempts >= self.settings.delivery_max_attempts:
                results.finish(item, OutboxState.FAILED, why, attempts=attempts)
            else:
                due = results.now + HOLD_FOR_REPLY
                results.finish(item, OutboxState.PENDING, why, attempts=attempts, due_at=due)

    async def _deliver_qq(
        self, bundle: Bundle, qq: Binding, items: list[OutboxItem], results: Results
    ) -> None:
        """A QQ member: lessons and news reach them in their branch group; the rest privately."""
        assert self.onebot is not None
        onebot = self.onebot
        private: list[OutboxItem] = []
        for item in items:
            if bundle.in_group and item.kind in (PushKind.LESSON.value, PushKind.NEWS.value):
                results.attempt(item, "qq-group", True, None, "posted in the branch group")
                results.finish(item, OutboxState.SKIPPED, "posted in the branch group")
            else:
                private.append(item)
        if not private:
            return
        text = private[0].text if len(private) == 1 else render("push_digest", items=private)
        try:
            answer = await self._call(lambda: onebot.send_private(qq.external_id, text))
        except TransientError as problem:
            for item in private:
                results.attempt(item, "qq", False, None, str(problem))
                self._retry(results, item, str(problem))
            return
        for item in private:
            results.attempt(item, "qq", answer.ok, answer)
            if answer.ok:
                results.finish(item, OutboxState.SENT)
            else:
                self._retry(results, item, f"{answer.errcode} {answer.errmsg}")

    async def _send_custom(
        self, binding: Binding, items: list[OutboxItem], results: Results
    ) -> list[OutboxItem]:
        """One customer-service message for the bundle; returns the items left to fall back."""
        assert self.api is not None
        api = self.api
        text = items[0].text if len(items) == 1 else render("push_digest", items=items)
        text = cut_to_fit(text)

        async def send() -> Answer | None:
            # Checked at the last moment: a 45009 met by another bundle while this one
            # waited for its turn stops it too.
            if self.custom_paused_until and results.now < self.custom_paused_until:
                return None
            return await api.send_text(binding.external_id, text)

        try:
            answer = await self._call(send)
        except TransientError as problem:
            for item in items:
                results.attempt(item, "custom", False, None, str(problem))
                self._retry(results, item, str(problem))
            return []
        if answer is None:
            return items
        for item in items:
            results.attempt(item, "custom", answer.ok, answer)
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
                media_id = await api.upload_image(path)
                answer = await self._call(lambda m=media_id: api.send_image(binding.external_id, m))  # type: ignore[misc]
            except (TransientError, WeChatApiError, OSError) as problem:
                results.attempt(item, "image", False, None, str(problem))
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
                self._retry(results, item, error)
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
                lambda: api.send_template(binding.external_id, template, data, item.key)
            )
        except TransientError as problem:
            results.attempt(item, "template", False, None, str(problem))
            self._retry(results, item, str(problem))
            return
        results.attempt(item, "template", answer.ok, answer)
        if answer.ok:
            results.finish(item, OutboxState.FALLBACK)
        elif answer.errcode in (NOT_FOLLOWING, BUSY) or answer.errcode in CONFIGURATION:
            self._settle_error(binding, [item], answer, results)
        else:
            results.to_mailbox(item, f"template refused: {answer.errcode} {answer.errmsg}")

    async def _apply(self, results: Results) -> None:
        async with transaction(self.sessions) as session:
            if results.items:
                await session.exec(update(OutboxItem), params=results.items)
            if results.attempts:
                await session.exec(insert(DeliveryAttempt), params=results.attempts)
            if results.bindings:
                await session.exec(update(Binding), params=list(results.bindings.values()))
            if results.mailbox:
                await session.exec(insert(MailboxItem), params=results.mailbox)
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
