"""内容: micro-lessons, micro-news and micro-videos written in the console — list, write with a
preview of what a member receives, publish now, schedule, take down, and every earlier
version kept and restorable. The organisation's content: admins only (a secretary gets 404).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import content_editing
from bot.appkeys import SESSIONS
from bot.content_editing import Draft, Problem
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
}
ARTICLE_ID = r"{id:\d{1,12}}"
VERSION_ID = r"{version:\d{1,12}}"


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
    status: int = 200,
) -> web.Response:
    return page(
        request,
        "content_edit",
        status=status,
        article=article,
        form=form,
        problems={problem.field: problem for problem in problems or []},
        preview=preview,
        versions=versions or [],
        kinds=KIND_NAMES,
        letters=content_editing.OPTION_LETTERS,
        limits=content_editing.LIMITS,
        zone=request.app[CLOCK].zone,
        now=request.app[CLOCK].now(),
        saved=request.query.get("saved", "")[:20],
    )


def _preview(draft: Draft) -> str:
    """What a member receives for `微党课` / `资讯` / `微视频`."""
    shown = Article(slug="preview", **draft.fields())  # type: ignore[arg-type]
    return article_text(draft.kind.value, shown)


async def _form(request: web.Request) -> dict[str, str]:
    posted = await request.post()
    return {key: str(value) for key, value in posted.items() if isinstance(value, str)}


@routes.post("/content/preview", name="content-preview")
async def content_preview(request: web.Request) -> web.StreamResponse:
    """The live preview (htmx, as the office types): the member's message, or what is still
    missing — a fragment of the editor page; nothing is saved."""
    _admin(request)
    checked = content_editing.check(await _form(request), request.app[CLOCK].zone)
    if isinstance(checked, list):
        return page(request, "content_preview", problems=checked, preview="", fields=FIELD_NAMES)
    return page(
        request, "content_preview", problems=[], preview=_preview(checked), fields=FIELD_NAMES
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
    form = await _form(request)
    clock = request.app[CLOCK]
    checked = content_editing.check(form, clock.zone)
    if isinstance(checked, list):
        return _editor(request, None, form, problems=checked, status=422)
    if form.get("action") == "preview":
        return _editor(request, None, form, preview=_preview(checked))
    async with transaction(request.config_dict[SESSIONS]) as session:
        article = await content_editing.create(session, actor_of(request), checked, clock.now())
    raise web.HTTPSeeOther(f"/admin/content/{article.id}?saved=created")


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
    form = await _form(request)
    clock = request.app[CLOCK]
    checked = content_editing.check(form, clock.zone)
    async with transaction(request.config_dict[SESSIONS]) as session:
        article = await _article(session, request)
        assert article.id is not None
        if isinstance(checked, list) or form.get("action") == "preview":
            versions = await content_editing.versions(session, article.id)
            if isinstance(checked, list):
                return _editor(
                    request, article, form, problems=checked, versions=versions, status=422
                )
            return _editor(request, article, form, preview=_preview(checked), versions=versions)
        changed = await content_editing.edit(
            session, actor_of(request), article, checked, clock.now()
        )
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
        preview=_preview(draft),
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
