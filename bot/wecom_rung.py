"""The ladder's WeCom rung: the items a bundle passes to it go as one app message (a text
card for one lesson, news or video with a link; text otherwise) in a slot reserved at claim
(data/wecom_quota.py). What it does with each answer:

- sent: the slot stays counted, the items are sent;
- outside the app's visible range (81013, `invaliduser`): the WeCom binding is marked
  unreachable and the items go on to the next rung at once;
- busy (-1), a frequency or concurrency limit of the API (45009, 45033), HTTP 5xx, network:
  retried on this rung after the backoff;
- the token refused, another error: the items go on to the next rung (the token: for the
  whole round, without asking again);
- no slot — the member at WeCom's minute or hour limit: the items wait until it frees (no try
  counted); the app's daily cap spent: the items go on to the next rung.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.channels.wecom_api import DUPLICATE_CHECK_SECONDS, SendAnswer, TokenRefused, WeComApi
from bot.delivery import BUSY, CallFailed, Results
from bot.messages import cut_to_fit
from bot.pushes import ARTICLE_PUSHES
from content.texts import render
from data import outbox
from data.models import Binding, OutboxItem, OutboxState, PushKind

if TYPE_CHECKING:
    from bot.dispatcher import Bundle

log = logging.getLogger(__name__)

CHANNEL = "wecom"
# Answers that may pass by themselves: busy, a frequency or concurrency limit of the API.
PASSING = frozenset({BUSY, 45009, 45033})
TEXT_LIMIT_BYTES = 2048  # a text message's content
CARD_TITLE_BYTES = 128
CARD_DESCRIPTION_BYTES = 512
# The duplicate check reaches back to the row's creation and this much further (clocks of
# two machines differ a little): a resend of the same row is never shown twice, an earlier
# push with the same text is not taken for it.
DEDUPE_MARGIN = dt.timedelta(minutes=1)

Send = Callable[[], Awaitable[SendAnswer]]
Guard = Callable[[], Awaitable[None]]
Call = Callable[[Send, Guard], Awaitable[SendAnswer]]


@dataclass
class Reach:
    """A bundle's WeCom side, settled at claim: the binding and the slots reserved."""

    binding: Binding | None = None
    slots: list[int] = field(default_factory=list)
    frees_at: dt.datetime | None = None  # at the member's minute or hour limit until then
    capped: bool = False  # the app's daily cap left no slot


@dataclass(frozen=True)
class Link:
    title: str
    url: str


def article_id(item: OutboxItem) -> int | None:
    """The article an article push is about (its reference is `article:<id>`)."""
    return outbox.article_of(item) if PushKind(item.kind) in ARTICLE_PUSHES else None


def dedupe_seconds(items: list[OutboxItem], now: dt.datetime) -> int:
    """The duplicate-check interval keyed to the rows: back to the oldest one's creation."""
    oldest = min(item.created_at for item in items)
    span = (now - oldest + DEDUPE_MARGIN).total_seconds()
    return int(max(DEDUPE_MARGIN.total_seconds(), min(span, DUPLICATE_CHECK_SECONDS)))


class WeComRung:
    def __init__(self, api: WeComApi, call: Call) -> None:
        self.api = api
        self.call = call

    def usable(self, bundle: Bundle, results: Results) -> bool:
        binding = bundle.wecom.binding
        return (
            binding is not None
            and binding.reachable
            and CHANNEL not in bundle.lost
            and results.wecom_down is None
        )

    async def deliver(
        self, bundle: Bundle, items: list[OutboxItem], results: Results
    ) -> list[OutboxItem]:
        """Send the items as one message, or not; returns the items passed to the next rung."""
        if not self.usable(bundle, results):
            return items
        reach = bundle.wecom
        assert reach.binding is not None
        if not reach.slots:
            if reach.frees_at is not None:
                for item in items:
                    results.defer(item, reach.frees_at, "waits for WeCom's per-member limit")
                return []
            bundle.why = "WeCom's daily cap reached" if reach.capped else bundle.why
            return items
        slot = reach.slots.pop(0)
        user = reach.binding.external_id
        send = self._message(bundle, user, items, results.now)
        ids = [item.id for item in items if item.id is not None]
        try:
            answer = await self.call(send, lambda: results.holder.confirm(ids))
        except CallFailed as failed:
            failure = failed.failure
            for item in items:
                results.failed_call(item, "wecom", failure)
            if failure.transient:
                if failure.errcode is not None:  # WeCom answered busy: nothing was shown
                    results.released.append(slot)
                # else it may have been shown: the slot stays counted
                for item in items:
                    results.retry(item, failure.detail)
                return []
            results.released.append(slot)
            log.error("WeCom send failed for good: %s", failure.detail)
            if results.wecom_down is None and isinstance(failed.__cause__, TokenRefused):
                results.wecom_down = failure
            bundle.why = failure.detail
            return items
        for item in items:
            results.attempt(item, "wecom", answer.ok, answer)
        if answer.ok:
            for item in items:
                results.finish(item, OutboxState.SENT)
            return []
        results.released.append(slot)  # WeCom showed nothing
        error = f"{answer.errcode} {answer.errmsg}"
        if answer.out_of_range:
            results.binding(reach.binding, reachable=False)
            bundle.lost.add(CHANNEL)
            bundle.why = error
            return items
        if answer.errcode in PASSING:
            for item in items:
                results.retry(item, error)
            return []
        log.error("WeCom refused a send: %s", error)
        bundle.why = error
        return items

    def _message(
        self, bundle: Bundle, user: str, items: list[OutboxItem], now: dt.datetime
    ) -> Send:
        seconds = dedupe_seconds(items, now)
        api = self.api
        if len(items) == 1 and (number := article_id(items[0])) in bundle.links:
            link = bundle.links[number]  # type: ignore[index]
            title = cut_to_fit(link.title, CARD_TITLE_BYTES)
            description = cut_to_fit(items[0].brief, CARD_DESCRIPTION_BYTES)
            return lambda: api.send_textcard(
                user, title, description, link.url, dedupe_seconds=seconds
            )
        text = items[0].text if len(items) == 1 else render("push_digest", items=items)
        text = cut_to_fit(text, TEXT_LIMIT_BYTES)
        return lambda: api.send_text(user, text, dedupe_seconds=seconds)
