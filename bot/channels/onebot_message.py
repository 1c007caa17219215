"""OneBot v11 message content: the array of segments or the CQ-code string, read alike."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_CQ = re.compile(r"\[CQ:([A-Za-z0-9_.\-]+)((?:,[^\[\]]*?)*)\]")


def _unescape_text(text: str) -> str:
    return text.replace("&#91;", "[").replace("&#93;", "]").replace("&amp;", "&")


def _unescape_param(text: str) -> str:
    return _unescape_text(text.replace("&#44;", ","))


def parse_cq(message: str) -> list[dict[str, Any]]:
    """ "[CQ:at,qq=10001] 学习 30" -> [{"type": "at", "data": {"qq": "10001"}}, text segment]."""
    found: list[dict[str, Any]] = []
    position = 0
    for match in _CQ.finditer(message):
        if match.start() > position:
            found.append(
                {
                    "type": "text",
                    "data": {"text": _unescape_text(message[position : match.start()])},
                }
            )
        data: dict[str, str] = {}
        for pair in filter(None, match.group(2).split(",")):
            key, _, value = pair.partition("=")
            data[key] = _unescape_param(value)
        found.append({"type": match.group(1), "data": data})
        position = match.end()
    if position < len(message):
        found.append({"type": "text", "data": {"text": _unescape_text(message[position:])}})
    return found


@dataclass(frozen=True)
class Content:
    text: str
    mentions: frozenset[str] = field(default_factory=frozenset)
    images: tuple[str, ...] = ()


def read(message: Any) -> Content:
    """The text (segments joined, trimmed), who is @-mentioned, and image URLs."""
    if isinstance(message, str):
        segments = parse_cq(message)
    elif isinstance(message, list):
        segments = [s for s in message if isinstance(s, dict)]
    else:
        raise ValueError("message is neither a string nor an array of segments")
    texts: list[str] = []
    mentions: set[str] = set()
    images: list[str] = []
    for segment in segments:
        kind = segment.get("type")
        data = segment.get("data") or {}
        if kind == "text":
            texts.append(str(data.get("text", "")))
        elif kind == "at":
            mentions.add(str(data.get("qq", "")))
        elif kind == "image":
            images.append(str(data.get("url") or data.get("file") or ""))
    return Content("".join(texts).strip(), frozenset(mentions), tuple(images))
