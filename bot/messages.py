"""The channel-neutral message model: adapters build `Inbound`, the bot answers with text."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum


class InboundKind(StrEnum):
    TEXT = "text"
    SUBSCRIBE = "subscribe"
    OPENED = "opened"  # the member opened the app (WeCom's enter_agent)
    UNSUBSCRIBE = "unsubscribe"
    MEDIA = "media"  # pictures, videos, files (see `Inbound.media`)
    UNSUPPORTED = "unsupported"  # what the bot cannot read (locations, links…)
    SILENT = "silent"  # events that need an acknowledgement and no answer


@dataclass(frozen=True)
class Sender:
    """An opaque chat address: handlers pass it to `data/` but never look inside."""

    channel: str
    external_id: str


@dataclass(frozen=True)
class Media:
    kind: str  # image | video | file
    reference: str  # the platform's media id, or a URL


@dataclass(frozen=True)
class ContactWindow:
    """What the platform allows after this inbound: pushes for `duration`, `budget` of them."""

    duration: dt.timedelta
    budget: int


@dataclass(frozen=True)
class RequestPair:
    """A signed request's (timestamp, nonce) with its body's SHA-256 (hex). Where the body is
    not signed (WeChat's plain mode), a captured query string could carry any body: the pair
    is accepted with one body only, remembered in the message's own transaction."""

    timestamp: int
    nonce: str
    digest: str


@dataclass(frozen=True)
class Inbound:
    sender: Sender
    key: str  # unique per channel: the platform's message id, or what stands for it
    kind: InboundKind
    received_at: dt.datetime
    text: str = ""
    window: ContactWindow | None = None
    media: tuple[Media, ...] = ()
    # The platform vouches that the sender's id is the member's 工号 (WeCom, where the
    # enterprise assigns UserIds, with QIYI_WECOM_AUTOBIND): an unbound sender may be bound.
    vouched: bool = False
    # Set by adapters whose requests' pairs must be used with one body only (`RequestPair`).
    pair: RequestPair | None = None


# The longest text an adapter passes on (characters): twice the longest any command takes
# (a 5,000-character note), so a command still sees that it was given too much and says so,
# while no step on the message path ever works through more.
INBOUND_TEXT_LIMIT = 10_000


def bounded_text(text: str) -> str:
    """An inbound text as adapters pass it on: at most `INBOUND_TEXT_LIMIT` characters."""
    return text[:INBOUND_TEXT_LIMIT]


# The tightest text limit of the channels (a WeChat passive reply): handlers that
# compose long texts choose a shorter form above it, adapters cut as a last resort.
TEXT_LIMIT_BYTES = 2048


def fits(text: str, limit: int = TEXT_LIMIT_BYTES) -> bool:
    return len(text.encode("utf-8")) <= limit


def cut_to_fit(text: str, limit: int = TEXT_LIMIT_BYTES) -> str:
    """`text` shortened on a character boundary, with an ellipsis, to at most `limit` bytes."""
    if fits(text, limit):
        return text
    cut = text.encode("utf-8")[: limit - len("…".encode())].decode("utf-8", errors="ignore")
    return cut + "…"
