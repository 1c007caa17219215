"""OneBot v11 message content: the array of segments or the CQ-code string, read alike."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.messages import Media

# One unbounded repeat per part, each ended by a character it cannot contain (the type by
# "," or "]", the parameters by "]"): no backtracking between them, so the scan is linear.
# (Parameters as a repeated group of lazily matched pairs took exponential time on commas.)
_CQ = re.compile(r"\[CQ:([A-Za-z0-9_.\-]+)(,[^\[\]]*)?\]")


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
        for pair in filter(None, (match.group(2) or "").split(",")):
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
    media: tuple[Media, ...] = ()


# Segments that are materials (资料), and where their reference is: NapCat gives a URL for
# pictures and videos, a file id for files; `file` is the name the implementation knows.
MEDIA_SEGMENTS = frozenset({"image", "video", "file"})
_REFERENCE_KEYS = ("url", "file_id", "file")


def _reference(data: dict[str, Any]) -> str:
    return next((str(data[key]) for key in _REFERENCE_KEYS if data.get(key)), "")


def read(message: Any) -> Content:
    """The text (segments joined, trimmed), who is @-mentioned, and pictures, videos, files."""
    if isinstance(message, str):
        segments = parse_cq(message)
    elif isinstance(message, list):
        segments = [s for s in message if isinstance(s, dict)]
    else:
        raise ValueError("message is neither a string nor an array of segments")
    texts: list[str] = []
    mentions: set[str] = set()
    media: list[Media] = []
    for segment in segments:
        kind = str(segment.get("type"))
        data = segment.get("data")
        if not isinstance(data, dict):
            continue  # a segment without its data object: nothing to read
        if kind == "text":
            texts.append(str(data.get("text", "")))
        elif kind == "at":
            mentions.add(str(data.get("qq", "")))
        elif kind in MEDIA_SEGMENTS and (reference := _reference(data)):
            media.append(Media(kind, reference))
    return Content("".join(texts).strip(), frozenset(mentions), tuple(media))
