"""What one dispatcher round holds and decides: the lease on its rows (renewed while a paced
batch is sent), how a failed call counts, and the results written when the round ends."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import aiohttp

from bot.channels.outbound import Answer, TransientError
from bot.channels.wechat_api import TokenRefused, WeChatApiError
from bot.channels.wecom_api import WeComApiError
from bot.clock import Clock
from data import leases
from data.db import Sessions, transaction
from data.models import Binding, OutboxItem, OutboxState

log = logging.getLogger(__name__)

BUSY = -1
# Answers that may pass by themselves: system busy, the API's daily and minute quotas.
PASSING = frozenset({BUSY, 45009, 45011})
# Configuration the admins must fix: IP not whitelisted, no permission for the API, a wrong
# AppID or AppSecret. Never retried; told to the admins once a day.
CONFIGURATION = frozenset({40164, 48001, 40013, 40125})


@dataclass(frozen=True)
class Failure:
    """Why a call did not deliver, and whether trying again later can help."""

    transient: bool
    detail: str
    errcode: int | None = None
    token: bool = False  # the access token could not be had: every WeChat call fails alike

    @property
    def alert(self) -> bool:
        return self.errcode in CONFIGURATION


def classify(problem: BaseException) -> Failure:
    """Network trouble, timeouts, HTTP 5xx, an answer that is not JSON, a busy platform:
    transient. A configuration errcode, bad data, anything unexpected: permanent."""
    if isinstance(problem, WeChatApiError):
        detail = f"{problem.errcode} {problem.errmsg}"
        token = isinstance(problem, TokenRefused)
        return Failure(problem.errcode in PASSING, detail, problem.errcode, token)
    if isinstance(problem, WeComApiError) and problem.errcode == BUSY:
        # WeCom's "system busy" (from gettoken too): it passes; WeCom stays in the round.
        return Failure(True, f"{problem.errcode} {problem.errmsg}", problem.errcode)
    if isinstance(problem, TransientError | aiohttp.ClientError | TimeoutError):
        return Failure(True, str(problem) or type(problem).__name__)
    if isinstance(problem, json.JSONDecodeError):
        return Failure(True, f"not JSON: {problem}")
    return Failure(False, f"{type(problem).__name__}: {problem}")


class CallFailed(Exception):
    """A platform call raised; `failure` says how it counts."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.detail)
        self.failure = failure


class LeaseLost(Exception):
    """Rows this dispatcher claimed are now another's: it must not send them."""


class Holder:
    """The lease of one claim, renewed whenever half of it has passed: a batch that takes
    longer to send than the lease (QQ sends are paced a second or more apart) stays this
    dispatcher's, and a dispatcher that lost it learns so before sending."""

    def __init__(
        self, sessions: Sessions, clock: Clock, lease: leases.Lease, length: dt.timedelta
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.lease = lease
        self.length = length
        self._renewing = asyncio.Lock()

    async def confirm(self, ids: Iterable[int]) -> None:
        """Raise `LeaseLost` unless every one of `ids` is still held (renewing first when due).
        Called right before a send, after any wait for its turn."""
        async with self._renewing:
            if self.clock.now() >= self.lease.until - self.length / 2:
                async with transaction(self.sessions) as session:
                    self.lease = await leases.renew(
                        session, self.lease, self.clock.now(), self.length
                    )
        if not set(ids) <= self.lease.ids:
            raise LeaseLost

    def holds(self, row_id: int | None) -> bool:
        return row_id in self.lease.ids


@dataclass
class Results:
    """What delivery decided; written in one transaction afterwards."""

    now: dt.datetime
    holder: Holder
    retries: leases.Retries
    items: list[leases.Change] = field(default_factory=list)
    attempts: list[dict[str, object]] = field(default_factory=list)
    bindings: dict[int, dict[str, object]] = field(default_factory=dict)
    mailbox: list[tuple[int, dict[str, object]]] = field(default_factory=list)  # (item id, row)
    alerts: set[int] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)
    settled: set[int] = field(default_factory=set)
    wechat_down: Failure | None = None  # the access token failed: the round's other WeChat
    # sends fail alike without calling again
    wecom_down: Failure | None = None  # WeCom's token was refused: the rung is out this round
    released: list[int] = field(default_factory=list)  # WeCom slots no message used

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

    def _settle(self, item: OutboxItem, change: leases.Change, count: str) -> None:
        assert item.id is not None
        self.items.append(change)
        self.settled.add(item.id)
        self.counts[count] += 1

    def finish(self, item: OutboxItem, state: OutboxState, error: str = "") -> None:
        self._settle(item, leases.done(item, state, self.now, error), state.value)

    def retry(self, item: OutboxItem, error: str, delay: dt.timedelta | None = None) -> None:
        """Tried again after the backoff (or `delay`), or failed when the tries are used up."""
        change = self.retries.after(item, self.now, error, delay)
        self._settle(item, change, "retry" if change["state"] == "pending" else "failed")

    def failed_call(self, item: OutboxItem, method: str, failure: Failure) -> None:
        """A call for the item raised: an attempt that did not deliver, with the platform's
        errcode when it answered with one (a refused upload or token, a busy platform)."""
        answer = Answer(failure.errcode, failure.detail) if failure.errcode is not None else None
        self.attempt(item, method, False, answer, failure.detail)

    def fail(self, item: OutboxItem, method: str, failure: Failure) -> None:
        """A call for the item failed: recorded as an attempt, then retried or failed by kind."""
        self.failed_call(item, method, failure)
        if failure.alert:
            assert failure.errcode is not None
            self.alerts.add(failure.errcode)
        if failure.transient:
            self.retry(item, failure.detail)
        else:
            self.finish(item, OutboxState.FAILED, failure.detail)

    def defer(self, item: OutboxItem, until: dt.datetime, why: str) -> None:
        """Not tried: pending again from `until`, with no try counted (a limit was reached)."""
        assert item.id is not None
        change = {
            "id": item.id,
            "state": OutboxState.PENDING.value,
            "lease_until": None,
            "due_at": until,
            "last_error": why[:300],
        }
        self._settle(item, change, "deferred")

    def fail_all(self, items: list[OutboxItem], method: str, failure: Failure) -> None:
        """One call for these items failed; a refused WeChat token also fails the round's
        other WeChat sends, without asking again (`wechat_down`)."""
        if failure.token and self.wechat_down is None:
            log.error("no WeChat access token: %s", failure.detail)
            self.wechat_down = failure
        for item in items:
            self.fail(item, method, failure)

    def give_back(self, item: OutboxItem) -> None:
        """Not tried (the round stopped before its turn): pending again, as it was."""
        assert item.id is not None
        self.items.append(leases.given_back(item))
        self.settled.add(item.id)

    def to_mailbox(self, item: OutboxItem, why: str) -> None:
        assert item.id is not None
        self.mailbox.append(
            (item.id, {"member_id": item.member_id, "text": item.brief, "created_at": self.now})
        )
        self.attempt(item, "mailbox", True, None, why)
        self.finish(item, OutboxState.MAILBOX)

    def binding(self, binding: Binding, **changes: object) -> None:
        self.bindings.setdefault(binding.id or 0, {"id": binding.id}).update(changes)
