"""How old a request may be when a channel accepts it, and so how long a replay stays
possible: the dedupe keys must outlive that (`replay_horizon`, used by the nightly job)."""

from __future__ import annotations

import datetime as dt
import re

from bot.settings import Settings

# ASCII digits only: str.isdigit() and int() also take other scripts' digits ("١٢٣").
UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


def unix_timestamp(text: str | None) -> int | None:
    """The request's timestamp as written by the platforms (Unix seconds), or None."""
    if text is None or not UNIX_SECONDS.fullmatch(text):
        return None
    return int(text)


def within(timestamp: int, now: int, window: int) -> bool:
    """Whether `timestamp` is at most `window` seconds from `now`, either way."""
    return abs(timestamp - now) <= window


def replay_horizon(settings: Settings) -> dt.timedelta:
    """How long after a request was first accepted the same signed request could be accepted
    again, on any channel.

    WeChat and the QQ bot sign a timestamp that may be up to the replay window ahead when
    first accepted and is still accepted up to the window behind: twice the window. A OneBot
    event's own `time` (covered by its HMAC) may be up to the window ahead and is accepted
    until it is `onebot_max_event_age_seconds` old.
    """
    window = settings.replay_window_seconds
    onebot = window + settings.onebot_max_event_age_seconds
    return dt.timedelta(seconds=max(2 * window, onebot))
