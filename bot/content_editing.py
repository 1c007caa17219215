"""Writing lessons, news and videos in the console: the form's rules, and the edits — each
keeping the version it replaces and leaving an audit row.

The form is checked field by field; a problem is a (field, code) pair that the console's
template words in Chinese. Nothing is saved while there is any.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.textforms import typed
from data import articles, audit
from data.models import Article, ArticleKind, ArticleVersion, Member

# The editable fields, as the form names them and as a version keeps them (the files too:
# restoring a version restores its cover and video).
EDITABLE = (*articles.EDITABLE, *articles.MEDIA_FIELDS)
LIMITS = {
    "title": 200,
    "summary": 500,
    "body": 20_000,
    "url": 500,
    "quiz_question": 500,
    "quiz_explanation": 500,
    "option": 200,
}
OPTION_LETTERS = "ABCDE"
MIN_OPTIONS = 2
VERSIONS_SHOWN = 50


@dataclass(frozen=True)
class Problem:
    field: str
    # required | too_long | not_a_link | bad_time | too_few_options | answer_not_option |
    # lessons_only | videos_only | bad_type (a file's bytes) | too_large (a file, MB)
    code: str
    limit: int = 0


@dataclass(frozen=True)
class Files:
    """The article's files as the form leaves them: SHA-256 addresses ("" for none)."""

    cover: str = ""
    cover_mime: str = ""
    video: str = ""

    @classmethod
    def of(cls, article: Article | None) -> Files:
        if article is None:
            return cls()
        return cls(article.cover, article.cover_mime, article.video)


@dataclass(frozen=True)
class Draft:
    """A checked form: the article's editable fields, ready to save."""

    kind: ArticleKind
    title: str
    summary: str
    body: str
    url: str
    publish_at: dt.datetime
    quiz_question: str
    quiz_options: dict[str, str]
    quiz_answer: str
    quiz_explanation: str
    files: Files = Files()

    def fields(self) -> dict[str, object]:
        return {
            "kind": self.kind.value,
            "title": self.title,
            "summary": self.summary,
            "body": self.body,
            "url": self.url,
            "publish_at": self.publish_at,
            "quiz_question": self.quiz_question,
            "quiz_options": json.dumps(self.quiz_options, ensure_ascii=False)
            if self.quiz_options
            else "",
            "quiz_answer": self.quiz_answer,
            "quiz_explanation": self.quiz_explanation,
            "cover": self.files.cover,
            "cover_mime": self.files.cover_mime,
            "video": self.files.video,
        }


def _text(form: Mapping[str, str], name: str, problems: list[Problem]) -> str:
    # Bounded before it is normalised: the form's own size limit caps the whole request.
    value = typed(str(form.get(name, ""))[: LIMITS.get(name, 200) * 2 + 1]).strip()
    limit = LIMITS.get(name, 200)
    if len(value) > limit:
        problems.append(Problem(name, "too_long", limit))
    return value


def check(
    form: Mapping[str, str],
    zone: ZoneInfo,
    files: Files = Files(),
    file_problems: list[Problem] | None = None,
) -> Draft | list[Problem]:
    """The form as an article's fields with `files`, or every problem with it (those the
    uploads met, `file_problems`, among them)."""
    problems: list[Problem] = list(file_problems or [])
    kind_text = str(form.get("kind", ""))
    kind = ArticleKind(kind_text) if kind_text in {k.value for k in ArticleKind} else None
    if kind is None:
        problems.append(Problem("kind", "required"))
    title = _text(form, "title", problems)
    if not title:
        problems.append(Problem("title", "required"))
    summary = _text(form, "summary", problems)
    body = typed(str(form.get("body", ""))[: LIMITS["body"] + 1])
    if len(body) > LIMITS["body"]:
        problems.append(Problem("body", "too_long", LIMITS["body"]))
    if not body and kind is not ArticleKind.VIDEO:
        problems.append(Problem("body", "required"))
    url = _text(form, "url", problems)
    if url and not url.lower().startswith(("https://", "http://")):
        problems.append(Problem("url", "not_a_link"))
    if kind is ArticleKind.VIDEO and not url and not files.video:
        problems.append(Problem("url", "link_or_video"))
    if kind is not ArticleKind.VIDEO and files.video and kind is not None:
        problems.append(Problem("video", "videos_only"))
    publish_at = _local_time(str(form.get("publish_at", ""))[:20], zone)
    if publish_at is None:
        problems.append(Problem("publish_at", "bad_time"))
    question = _text(form, "quiz_question", problems)
    explanation = _text(form, "quiz_explanation", problems)
    options: dict[str, str] = {}
    for letter in OPTION_LETTERS:
        text = typed(str(form.get(f"option_{letter}", ""))[: LIMITS["option"] + 1]).strip()
        if len(text) > LIMITS["option"]:
            problems.append(Problem(f"option_{letter}", "too_long", LIMITS["option"]))
        if text:
            options[letter] = text
    answer = str(form.get("quiz_answer", "")).strip().upper()[:1]
    if question or options or answer:  # a quiz was begun: it must be whole
        if kind is not ArticleKind.LESSON:
            problems.append(Problem("quiz_question", "lessons_only"))
        if not question:
            problems.append(Problem("quiz_question", "required"))
        if len(options) < MIN_OPTIONS:
            problems.append(Problem("quiz_options", "too_few_options", MIN_OPTIONS))
        if not answer:
            problems.append(Problem("quiz_answer", "required"))
        elif answer not in options:
            problems.append(Problem("quiz_answer", "answer_not_option"))
    if problems or kind is None or publish_at is None:
        return problems
    return Draft(
        kind, title, summary, body, url, publish_at, question, options, answer, explanation, files
    )


def _local_time(text: str, zone: ZoneInfo) -> dt.datetime | None:
    """`2026-12-05T15:00` (what a datetime-local input sends) in the organisation's zone."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        return None
    return moment.replace(tzinfo=zone)


def snapshot(article: Article) -> dict[str, object]:
    """The editable fields as JSON-ready values (times as ISO text)."""
    values: dict[str, object] = {name: getattr(article, name) for name in EDITABLE}
    values["publish_at"] = article.publish_at.isoformat()
    values["hidden"] = article.hidden
    return values


def _audit_view(values: Mapping[str, object]) -> dict[str, object]:
    """What the audit row shows of a version: the short fields, not the whole body."""
    shown = {k: v for k, v in values.items() if k not in ("body", "quiz_options")}
    for name in ("cover", "video"):  # an address is long: its first digits tell it apart
        if shown.get(name):
            shown[name] = str(shown[name])[:12]
    shown["body_chars"] = len(str(values.get("body", "")))
    return shown


async def _keep_version(
    session: AsyncSession, article: Article, by: int | None, at: dt.datetime
) -> None:
    assert article.id is not None
    fields = json.dumps(snapshot(article), ensure_ascii=False)
    session.add(ArticleVersion(article_id=article.id, saved_at=at, saved_by=by, fields=fields))


async def _record(
    session: AsyncSession,
    actor: audit.Actor,
    action: str,
    article: Article,
    at: dt.datetime,
    before: Mapping[str, object] | None,
) -> None:
    await audit.record(
        session,
        actor,
        action,
        object_type="article",
        object_id=article.id,
        branch_id=None,
        at=at,
        before=_audit_view(before) if before else None,
        after=_audit_view(snapshot(article)),
    )


async def create(
    session: AsyncSession, actor: audit.Actor, draft: Draft, at: dt.datetime
) -> Article:
    stamp = at.strftime("%Y%m%d%H%M%S")
    slug = f"console-{draft.kind.value}-{stamp}-{secrets.token_hex(3)}"
    article = Article(slug=slug, edited_at=at, **draft.fields())  # type: ignore[arg-type]
    session.add(article)
    await session.flush()
    await _record(session, actor, "article.create", article, at, None)
    return article


async def edit(
    session: AsyncSession,
    actor: audit.Actor,
    article: Article,
    draft: Draft,
    at: dt.datetime,
    action: str = "article.edit",
) -> bool:
    """Save the draft over the article, keeping what it replaces; False when nothing
    changed (no version, no audit row)."""
    before = snapshot(article)
    changes = {k: v for k, v in draft.fields().items() if getattr(article, k) != v}
    if not changes:
        return False
    await _keep_version(session, article, actor.member_id, at)
    for name, value in changes.items():
        setattr(article, name, value)
    article.edited_at = at
    session.add(article)
    await _record(session, actor, action, article, at, before)
    return True


async def set_shown(
    session: AsyncSession,
    actor: audit.Actor,
    article: Article,
    shown: bool,
    at: dt.datetime,
) -> None:
    """Publish now (shown, and due from now if it was scheduled later) or take down."""
    before = snapshot(article)
    await _keep_version(session, article, actor.member_id, at)
    article.hidden = not shown
    if shown and article.publish_at > at:
        article.publish_at = at
    article.edited_at = at
    session.add(article)
    action = "article.publish" if shown else "article.unpublish"
    await _record(session, actor, action, article, at, before)


async def versions(session: AsyncSession, article_id: int) -> list[ArticleVersion]:
    statement = (
        select(ArticleVersion)
        .where(ArticleVersion.article_id == article_id)
        .order_by(col(ArticleVersion.id).desc())
        .limit(VERSIONS_SHOWN)
    )
    return list(await session.exec(statement))


def draft_of(version: ArticleVersion, zone: ZoneInfo) -> Draft:
    """A kept version as a draft, to restore it (restoring is an edit)."""
    values = json.loads(version.fields)
    options = json.loads(values["quiz_options"]) if values["quiz_options"] else {}
    return Draft(
        ArticleKind(values["kind"]),
        values["title"],
        values["summary"],
        values["body"],
        values["url"],
        dt.datetime.fromisoformat(values["publish_at"]).astimezone(zone),
        values["quiz_question"],
        options,
        values["quiz_answer"],
        values["quiz_explanation"],
        # Versions kept before files could be uploaded have none.
        Files(values.get("cover", ""), values.get("cover_mime", ""), values.get("video", "")),
    )


def options_of(article: Article) -> dict[str, str]:
    return json.loads(article.quiz_options) if article.quiz_options else {}


async def saver_name(session: AsyncSession, version: ArticleVersion) -> str:
    """Who replaced this version: a staff member's name, or "" for `qiyi content sync`."""
    if version.saved_by is None:
        return ""
    member = await session.get(Member, version.saved_by)
    return member.name if member else ""


async def file_type(session: AsyncSession, article: Article, sha256: str) -> str | None:
    """The MIME type of the file `sha256` when the article uses it as its cover or video,
    now or in a kept version; None when it does not."""
    assert article.id is not None
    found = [_file_type(snapshot(article), sha256)]
    statement = select(ArticleVersion.fields).where(
        ArticleVersion.article_id == article.id,
        col(ArticleVersion.fields).contains(sha256),
    )
    found += [_file_type(json.loads(fields), sha256) for fields in await session.exec(statement)]
    return next((mime for mime in found if mime), None)


def _file_type(values: Mapping[str, object], sha256: str) -> str | None:
    if values.get("cover") == sha256:
        return str(values.get("cover_mime") or "") or None
    if values.get("video") == sha256:
        return "video/mp4"
    return None
