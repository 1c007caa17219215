"""内容: micro-lessons, micro-news and micro-videos written in the console — list, write with a
preview of what a member receives, publish now, schedule, take down, and every earlier
version kept and restorable. The organisation's content: admins only (a secretary gets 404).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import content_editing, content_media, public_media
from bot.appkeys import MEDIA_STORE, SESSIONS, SETTINGS
from bot.content_editing import Draft, Files, Problem
from console import content_upload, security
from console.content_upload import MB, Posted, TooLargeRequest
from console.rendering import page
from console.staff import CLOCK, STAFF, actor_of
from data import articles
from data.db import transaction
from data.models import Article, ArticleKind, ArticleVersion
from handlers.lessons import article_text

routes = web.RouteTableDef()
KIND_NAMES = {"lesson": "微党课", "news": "微资讯", "video": "微视频"}
FIELD_NAMES = {
    "kind": "类别",
    "title": "标题",
    "summary": "摘要",
    "body": "正文",
    "url": "链接",
    "publish_at": "发布时间",
    "quiz_question": "测验题目",
    "quiz_options": "测验选项",
    "quiz_answer": "正确答案",
    "quiz_explanation": "解析",
    "cover": "封面图片",
    "video": "视频文件",
    "files": "上传的文件",
}
ARTICLE_ID = r"{id:\d{1,12}}"
VERSION_ID = r"{version:\d{1,12}}"
SHA256 = r"{sha256:[0-9a-f]{64}}"


def _admin(request: web.Request) -> None:
    if not request[STAFF].is_admin:
        raise web.HTTPNotFound()


def _page_number(text: str) -> int:
    return int(text) if text.isascii() and text.isdigit() and 0 < len(text) <= 5 else 1


@routes.get("/content", name="content")
async def content_list(request: web.Request) -> web.StreamResponse:
    _admin(request)
    kind_text = request.query.get("kind", "")
    kind = ArticleKind(kind_text) if kind_text in KIND_NAMES else None
    number = max(1, _page_number(request.query.get("page", "1")))
    async with request.config_dict[SESSIONS]() as session:
        rows, total = await articles.listing(session, kind, number)
    return page(
        request,
        "content_list",
        rows=rows,
        total=total,
        kind=kind.value if kind else "",
        kinds=KIND_NAMES,
        number=number,
        pages=max(1, -(-total // articles.PAGE_SIZE)),
        now=request.app[CLOCK].now(),
        zone=request.app[CLOCK].zone,
    )


def _form_of(article: Article | None, kind: str, now: dt.datetime) -> dict[str, str]:
    """The form's fields as text: an article's, or a new one's (published from now)."""
    if article is None:
        return {"kind": kind, "publish_at": now.strftime("%Y-%m-%dT%H:%M")}
    values = {name: str(getattr(article, name) or "") for name in content_editing.EDITABLE}
    values["publish_at"] = article.publish_at.astimezone(now.tzinfo).strftime("%Y-%m-%dT%H:%M")
    for letter, text in content_editing.options_of(article).items():
        values[f"option_{letter}"] = text
    return values


def _editor(
    request: web.Request,
    article: Article | None,
    form: Mapping[str, str],
    *,
    problems: list[Problem] | None = None,
    preview: str = "",
    versions: list[ArticleVersion] | None = None,
    draft: Draft | None = None,
    status: int = 200,
) -> web.Response:
    settings = request.config_dict[SETTINGS]
    return page(
        request,
        "content_edit",
        status=status,
        article=article,
        form=form,
        problems={problem.field: problem for problem in problems or []},
        preview=preview,
        card=_card(request, article, draft) if preview and draft else None,
        versions=versions or [],
        kinds=KIND_NAMES,
        letters=content_editing.OPTION_LETTERS,
        limits=content_editing.LIMITS,
        upload_mb=_upload_limits(request),
        public_url=settings.public_url,
        zone=request.app[CLOCK].zone,
        now=request.app[CLOCK].now(),
        saved=request.query.get("saved", "")[:20],
    )


def _upload_limits(request: web.Request) -> dict[str, int]:
    settings = request.config_dict[SETTINGS]
    return {"cover": settings.content_cover_max_mb, "video": settings.content_video_max_mb}


def _shown(draft: Draft) -> Article:
    return Article(slug="preview", **draft.fields())  # type: ignore[arg-type]


def _preview(request: web.Request, draft: Draft) -> str:
    """What a member receives for `微党课` / `资讯` / `微视频`."""
    return article_text(draft.kind.value, _shown(draft), request.config_dict[SETTINGS].public_url)


@dataclass(frozen=True)
class Card:
    """How a push of the draft reaches a WeChat member (bot.content_media.push_form), and
    the console's own addresses of its files, to show them."""

    form: str  # news | video | text
    cover: str  # the console's address of the cover, "" for none
    video: str


def _card(request: web.Request, article: Article | None, draft: Draft) -> Card:
    public_url = request.config_dict[SETTINGS].public_url
    shown = _shown(draft)
    base = f"/admin/content/{article.id}/files/" if article is not None else ""
    # A file only the form holds (not saved yet) has no address to be shown at.
    saved = Files.of(article)
    cover = draft.files.cover if draft.files.cover in (saved.cover,) else ""
    video = draft.files.video if draft.files.video in (saved.video,) else ""
    return Card(
        content_media.push_form(public_url, shown),
        f"{base}{cover}" if base and cover else "",
        f"{base}{video}" if base and video else "",
    )


async def _form(request: web.Request) -> dict[str, str]:
    posted = await request.post()
    return {key: str(value) for key, value in posted.items() if isinstance(value, str)}


async def _posted(request: web.Request) -> Posted:
    """The editor's form with its files; TooLargeRequest past every bound together."""
    limits = {name: mb * MB for name, mb in _upload_limits(request).items()}
    return await content_upload.read(
        request, request[STAFF], request.config_dict[MEDIA_STORE], limits
    )


@routes.post("/content/preview", name="content-preview")
async def content_preview(request: web.Request) -> web.StreamResponse:
    """The live preview (htmx, as the office types): the member's message, or what is still
    missing — a fragment of the editor page; nothing is saved."""
    _admin(request)
    form = await _form(request)
    article = None
    if (number := form.get("article", "")).isascii() and number.isdigit() and len(number) <= 12:
        async with request.config_dict[SESSIONS]() as session:
            article = await session.get(Article, int(number))
    files = Posted(form).files(Files.of(article))
    checked = content_editing.check(form, request.app[CLOCK].zone, files)
    if isinstance(checked, list):
        return page(request, "content_preview", problems=checked, preview="", fields=FIELD_NAMES)
    return page(
        request,
        "content_preview",
        problems=[],
        preview=_preview(request, checked),
        card=_card(request, article, checked),
        fields=FIELD_NAMES,
    )


@routes.get("/content/new", name="content-new")
async def content_new(request: web.Request) -> web.StreamResponse:
    _admin(request)
    kind = request.query.get("kind", "lesson")
    kind = kind if kind in KIND_NAMES else "lesson"
    return _editor(request, None, _form_of(None, kind, request.app[CLOCK].now()))


@routes.post("/content/new", name="content-create")
async def content_create(request: web.Request) -> web.StreamResponse:
    _admin(request)
    clock = request.app[CLOCK]
    try:
        posted = await _posted(request)
    except TooLargeRequest:
        form = _form_of(None, "lesson", clock.now())
        return _editor(request, None, form, problems=[_too_large(request)], status=413)
    try:
        form = posted.form
        checked = content_editing.check(form, clock.zone, posted.files(Files()), posted.problems)
        if isinstance(checked, list):
            return _editor(request, None, form, problems=checked, status=422)
        if form.get("action") == "preview":
            preview = _preview(request, checked)
            return _editor(request, None, form, preview=preview, draft=checked)
        await posted.keep(request.config_dict[MEDIA_STORE])
        async with transaction(request.config_dict[SESSIONS]) as session:
            article = await content_editing.create(session, actor_of(request), checked, clock.now())
    finally:
        await posted.discard()
    raise web.HTTPSeeOther(f"/admin/content/{article.id}?saved=created")


def _too_large(request: web.Request) -> Problem:
    limits = _upload_limits(request)
    return Problem("files", "request_too_large", max(limits.values()))


async def _article(session: AsyncSession, request: web.Request) -> Article:
    article = await session.get(Article, int(request.match_info["id"]))
    if article is None:
        raise web.HTTPNotFound()
    return article


@routes.get(f"/content/{ARTICLE_ID}", name="content-edit")
async def content_edit(request: web.Request) -> web.StreamResponse:
    _admin(request)
    async with request.config_dict[SESSIONS]() as session:
        article = await _article(session, request)
        assert article.id is not None
        versions = await content_editing.versions(session, article.id)
    form = _form_of(article, article.kind, request.app[CLOCK].now())
    return _editor(request, article, form, versions=versions)


@routes.post(f"/content/{ARTICLE_ID}", name="content-save")
async def content_save(request: web.Request) -> web.StreamResponse:
    _admin(request)
    clock = request.app[CLOCK]
    try:
        posted = await _posted(request)
    except TooLargeRequest:
        async with request.config_dict[SESSIONS]() as session:
            article = await _article(session, request)
            assert article.id is not None
            versions = await content_editing.versions(session, article.id)
        form = _form_of(article, article.kind, clock.now())
        problems = [_too_large(request)]
        return _editor(request, article, form, problems=problems, versions=versions, status=413)
    form = posted.form
    try:
        async with transaction(request.config_dict[SESSIONS]) as session:
            article = await _article(session, request)
            assert article.id is not None
            files = posted.files(Files.of(article))
            checked = content_editing.check(form, clock.zone, files, posted.problems)
            if isinstance(checked, list) or form.get("action") == "preview":
                versions = await content_editing.versions(session, article.id)
                if isinstance(checked, list):
                    return _editor(
                        request, article, form, problems=checked, versions=versions, status=422
                    )
                preview = _preview(request, checked)
                return _editor(
                    request, article, form, preview=preview, versions=versions, draft=checked
                )
            await posted.keep(request.config_dict[MEDIA_STORE])
            changed = await content_editing.edit(
                session, actor_of(request), article, checked, clock.now()
            )
    finally:
        await posted.discard()
    raise web.HTTPSeeOther(f"/admin/content/{article.id}?saved={'saved' if changed else 'same'}")


@routes.post(f"/content/{ARTICLE_ID}/publish", name="content-publish")
async def content_publish(request: web.Request) -> web.StreamResponse:
    """发布 (now, or at once if it was scheduled later) or 下线 (members no longer see it)."""
    _admin(request)
    form = await _form(request)
    shown = form.get("shown") == "1"
    async with transaction(request.config_dict[SESSIONS]) as session:
        article = await _article(session, request)
        now = request.app[CLOCK].now()
        await content_editing.set_shown(session, actor_of(request), article, shown, now)
    raise web.HTTPSeeOther(
        f"/admin/content/{article.id}?saved={'published' if shown else 'unpublished'}"
    )


async def _version(session: AsyncSession, request: web.Request, article: Article) -> ArticleVersion:
    version = await session.get(ArticleVersion, int(request.match_info["version"]))
    if version is None or version.article_id != article.id:
        raise web.HTTPNotFound()
    return version


@routes.get(f"/content/{ARTICLE_ID}/versions/{VERSION_ID}", name="content-version")
async def content_version(request: web.Request) -> web.StreamResponse:
    _admin(request)
    zone = request.app[CLOCK].zone
    async with request.config_dict[SESSIONS]() as session:
        article = await _article(session, request)
        version = await _version(session, request, article)
        by = await content_editing.saver_name(session, version)
    draft = content_editing.draft_of(version, zone)
    return page(
        request,
        "content_version",
        article=article,
        version=version,
        by=by,
        draft=draft,
        preview=_preview(request, draft),
        card=Card(
            content_media.push_form(request.config_dict[SETTINGS].public_url, _shown(draft)),
            f"/admin/content/{article.id}/files/{draft.files.cover}" if draft.files.cover else "",
            f"/admin/content/{article.id}/files/{draft.files.video}" if draft.files.video else "",
        ),
        kinds=KIND_NAMES,
        zone=zone,
    )


@routes.post(f"/content/{ARTICLE_ID}/versions/{VERSION_ID}/restore", name="content-restore")
async def content_restore(request: web.Request) -> web.StreamResponse:
    """Restoring a version is an edit: the current text is kept as a version in its turn."""
    _admin(request)
    clock = request.app[CLOCK]
    async with transaction(request.config_dict[SESSIONS]) as session:
        article = await _article(session, request)
        version = await _version(session, request, article)
        draft = content_editing.draft_of(version, clock.zone)
        await content_editing.edit(
            session, actor_of(request), article, draft, clock.now(), "article.restore"
        )
    raise web.HTTPSeeOther(f"/admin/content/{article.id}?saved=restored")


@routes.get(f"/content/{ARTICLE_ID}/files/{SHA256}", name="content-file")
async def content_file(request: web.Request) -> web.StreamResponse:
    """A cover or video of the article, now or in one of its versions (any other file of
    the store, such as a branch's material, is a 404 here)."""
    _admin(request)
    sha256 = request.match_info["sha256"]
    async with request.config_dict[SESSIONS]() as session:
        article = await _article(session, request)
        assert article.id is not None
        mime = await content_editing.file_type(session, article, sha256)
    if mime is None:
        raise web.HTTPNotFound()
    headers = {**security.HEADERS, "Cache-Control": "private, max-age=86400"}
    return await public_media.send_file(
        request, request.config_dict[MEDIA_STORE], sha256, mime, headers
    )
