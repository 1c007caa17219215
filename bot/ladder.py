"""The delivery ladder: the ways a push can reach a member, best first, and which of them a
member can be reached by now. The dispatcher climbs it for every push (bot/dispatcher.py);
`qiyi members list` and the console's member page show a member's reachable rungs.

The order is configurable (`QIYI_DELIVERY_ORDER`, validated at start); the mailbox — the
member's next reply on any channel — is always the last rung, implied when not named.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.settings import Settings
    from data.models import Binding


class Rung(StrEnum):
    WECHAT_WINDOW = "wechat-window"  # a customer-service message within the 48-hour window
    WECOM = "wecom"  # a WeCom app message (no window; per-member and daily limits)
    QQ = "qq"  # OneBot: a private message, or the branch group for lessons and news
    WECHAT_TEMPLATE = "wechat-template"  # a template message, when one is set for the kind
    MAILBOX = "mailbox"  # the member's next reply, on any channel


DEFAULT_ORDER = "wechat-window,wecom,qq,wechat-template,mailbox"

# The rungs as people read them (the member list, the console's member page).
RUNG_NAMES = {
    Rung.WECHAT_WINDOW: "微信窗口",
    Rung.WECOM: "企业微信",
    Rung.QQ: "QQ",
    Rung.WECHAT_TEMPLATE: "模板",
    Rung.MAILBOX: "留言箱",
}

# The channel of the binding each push rung needs.
CHANNEL_OF = {
    Rung.WECHAT_WINDOW: "wechat",
    Rung.WECOM: "wecom",
    Rung.QQ: "qq",
    Rung.WECHAT_TEMPLATE: "wechat",
}


def parse_order(value: str) -> tuple[Rung, ...]:
    """`QIYI_DELIVERY_ORDER` as rungs: comma-separated names, each at most once, the mailbox
    last (appended when left out). Raises ValueError naming what is wrong."""
    names = [name.strip().lower() for name in value.split(",") if name.strip()]
    known = {rung.value for rung in Rung}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(
            f"unknown delivery rung {unknown[0]!r} (known: {', '.join(rung for rung in Rung)})"
        )
    if len(set(names)) != len(names):
        raise ValueError("a delivery rung is named twice")
    if Rung.MAILBOX in names and names[-1] != Rung.MAILBOX:
        raise ValueError("the mailbox is always the last rung")
    rungs = tuple(Rung(name) for name in names if name != Rung.MAILBOX)
    if not rungs:
        raise ValueError("no push rung named")
    return (*rungs, Rung.MAILBOX)


def window_open(binding: Binding, now: dt.datetime) -> bool:
    """WeChat's 48-hour window is open with budget left."""
    return (
        binding.window_until is not None
        and binding.window_until > now
        and binding.window_used < binding.window_budget
    )


def reachable_rungs(
    settings: Settings, bindings: Iterable[Binding], now: dt.datetime
) -> list[Rung]:
    """The rungs a push to the member could take now, in the configured order: a reachable
    binding on the rung's channel and the rung's API configured (the template rung: a
    template set for at least one kind). The per-push details — the budget kept for urgent
    kinds, WeCom's limits, the template of the push's kind — are the dispatcher's."""
    by_channel = {binding.channel: binding for binding in bindings if binding.reachable}
    wechat = by_channel.get("wechat")
    wechat_api = bool(settings.wechat_appid and settings.wechat_secret)
    available = {
        Rung.WECHAT_WINDOW: wechat_api and wechat is not None and window_open(wechat, now),
        Rung.WECOM: settings.wecom_api_ready and "wecom" in by_channel,
        Rung.QQ: bool(settings.onebot_api_url) and "qq" in by_channel,
        Rung.WECHAT_TEMPLATE: wechat_api and wechat is not None and settings.any_template,
        Rung.MAILBOX: True,
    }
    return [rung for rung in settings.ladder if available[rung]]


def rung_names(rungs: Sequence[Rung]) -> str:
    """'微信窗口、企业微信、留言箱'."""
    return "、".join(RUNG_NAMES[rung] for rung in rungs)
