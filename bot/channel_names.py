"""The chat channels as members name them (`解绑 微信`, the security notice): defined once."""

from __future__ import annotations

import unicodedata

# The name shown to people for each channel id the adapters use.
CHANNEL_NAMES = {
    "wechat": "微信",
    "wecom": "企业微信",
    "qq": "QQ",
    "qqbot": "QQ机器人",
    "qqbot-group": "QQ群机器人",
    "console": "控制台",
}

# What people may type for a channel. Plain "QQ" covers every QQ door: a member rarely
# knows (or cares) whether the office connected QQ through OneBot or the official bot.
_TYPED = {
    "微信": ("wechat",),
    "wechat": ("wechat",),
    "weixin": ("wechat",),
    "wx": ("wechat",),
    "企业微信": ("wecom",),
    "企微": ("wecom",),
    "wecom": ("wecom",),
    "qq": ("qq", "qqbot", "qqbot-group"),
    "qq机器人": ("qqbot",),
    "qqbot": ("qqbot",),
    "qq群机器人": ("qqbot-group",),
    "qq群": ("qqbot-group",),
    "qqbot-group": ("qqbot-group",),
    "控制台": ("console",),
    "console": ("console",),
}


def channel_name(channel: str) -> str:
    """The Chinese name of a channel id; an id nobody named is shown as it is."""
    return CHANNEL_NAMES.get(channel, channel)


def channels_named(text: str) -> tuple[str, ...] | None:
    """The channel ids a typed name means (full-width letters and any case accepted), or
    None when it names no channel."""
    key = unicodedata.normalize("NFKC", text).strip().lower()
    return _TYPED.get(key)
