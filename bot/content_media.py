"""An article's files: the cover picture and a 微视频's MP4 uploaded in the console — what
they may be, and the public addresses members reach them at.

The addresses are content addresses (`/media/c/<sha256>.jpg`, `/media/v/<sha256>.mp4`):
unguessable, the same for the same file, and served only while a published article uses
the file (bot/public_media.py). Nothing a browser sends ever becomes a path.
"""

from __future__ import annotations

from data.media import kinds
from data.media.store import Spooled
from data.models import Article, ArticleKind

COVER_TYPES = {kinds.JPEG: "jpg", kinds.PNG: "png", kinds.WEBP: "webp"}
VIDEO_EXTENSION = "mp4"
COVER_PATH = "/media/c/"
VIDEO_PATH = "/media/v/"


class Refused(Exception):
    """Not a file this field takes: `code` names why (`bad_type`)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def cover_type(spooled: Spooled) -> str:
    """The cover's MIME type read from its bytes (JPEG, PNG or WebP); Refused otherwise,
    whatever the file was named or declared to be."""
    found = kinds.sniff(spooled.head)
    if found not in COVER_TYPES:
        raise Refused("bad_type")
    return found


def check_video(spooled: Spooled) -> None:
    """An MP4 by its bytes (an `ftyp` box first); Refused otherwise."""
    if kinds.sniff(spooled.head) != kinds.MP4:
        raise Refused("bad_type")


def _base(public_url: str | None) -> str:
    return (public_url or "").rstrip("/")


def cover_url(public_url: str | None, article: Article) -> str:
    """Where a member's phone fetches the cover; "" without a cover or a public address."""
    extension = COVER_TYPES.get(article.cover_mime, "")
    if not (article.cover and extension and public_url):
        return ""
    return f"{_base(public_url)}{COVER_PATH}{article.cover}.{extension}"


def video_url(public_url: str | None, article: Article) -> str:
    """Where a member plays the uploaded video; "" without one or a public address."""
    if not (article.video and public_url):
        return ""
    return f"{_base(public_url)}{VIDEO_PATH}{article.video}.{VIDEO_EXTENSION}"


def watch_link(public_url: str | None, article: Article) -> str:
    """A 微视频's link in a text: the uploaded video's public address, else its link."""
    return video_url(public_url, article) or article.url


def push_form(public_url: str | None, article: Article) -> str:
    """How a push of the article reaches a WeChat member inside the window: `video` (an
    uploaded 微视频, sent as WeChat media), `news` (a 图文 card: the cover at its public
    address, opening the item's link) or `text` (as before)."""
    if article.kind == ArticleKind.VIDEO.value and article.video:
        return "video"
    if article.url and cover_url(public_url, article):
        return "news"
    return "text"
