"""内容: lessons, news and videos written in the console — checked field by field, previewed
as the member receives them, published, scheduled, taken down, every earlier version kept
and restorable, each change audited; `qiyi content sync` never overwrites such an article."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from sqlalchemy import func
from sqlmodel import col, select

from bot.appkeys import CONVERSATION
from content.library import read_all
from data import articles
from data.db import transaction
from data.models import Article, ArticleKind, ArticleVersion, AuditEntry
from tests.console.conftest import Console

LESSON = {
    "kind": "lesson",
    "title": "学习新修订的支部工作条例",
    "summary": "条例的五个要点",
    "body": "一、支部是党的基础组织。\n二、三会一课要经常。",
    "url": "",
    "publish_at": "2026-11-25T08:30",
    "quiz_question": "支部党员大会一般多久召开一次？",
    "option_A": "每月",
    "option_B": "每季度",
    "option_C": "每年",
    "quiz_answer": "B",
    "quiz_explanation": "条例规定一般每季度召开一次。",
}


async def admin(console: Console) -> tuple[Console, str]:
    """A second browser on the same server, signed in as the admin 9001, and its CSRF."""
    other = Console(TestClient(console.client.server), console.chat, console.clock)
    await other.client.start_server()
    return other, await other.sign_in("9001")


async def post(browser: Console, path: str, csrf: str, **fields: Any) -> ClientResponse:
    return await browser.client.post(path, data={"csrf": csrf, **fields}, allow_redirects=False)


async def count(console: Console, table: Any, *where: Any) -> int:
    sessions = console.client.app[CONVERSATION].sessions
    async with sessions() as session:
        statement = select(func.count()).select_from(table).where(*where)
        return int((await session.exec(statement)).one())


async def article(console: Console, article_id: int) -> Article:
    async with console.client.app[CONVERSATION].sessions() as session:
        found = await session.get(Article, article_id)
        assert found is not None
        return found


def created_id(response: ClientResponse) -> int:
    assert response.status == 303, response.status
    found = re.fullmatch(r"/admin/content/(\d+)\?saved=created", response.headers["Location"])
    assert found, response.headers["Location"]
    return int(found.group(1))


async def test_a_lesson_written_in_the_console_is_read_and_answered_in_chat(
    console: Console,
) -> None:
    browser, csrf = await admin(console)
    try:
        lesson_id = created_id(await post(browser, "/admin/content/new", csrf, **LESSON))
        page = await (await browser.client.get(f"/admin/content/{lesson_id}?saved=created")).text()
    finally:
        await browser.client.session.close()
    assert "已保存" in page and "已发布" in page

    reply = await console.chat.say("1001", "微党课")
    assert "【微党课】学习新修订的支部工作条例" in reply
    assert "支部党员大会一般多久召开一次？" in reply and "B. 每季度" in reply
    assert "回答正确" in await console.chat.say("1001", "答 B")
    saved = await article(console, lesson_id)
    assert saved.edited_at is not None and saved.quiz_answer == "B"
    assert await count(console, AuditEntry, AuditEntry.action == "article.create") == 1


async def test_every_problem_is_named_by_its_field_and_nothing_is_saved(console: Console) -> None:
    before = await count(console, Article)
    broken = {**LESSON, "title": "", "url": "ftp://example.org", "quiz_answer": "D"}
    browser, csrf = await admin(console)
    try:
        response = await post(browser, "/admin/content/new", csrf, **broken)
        page = await response.text()
        no_answer = await post(browser, "/admin/content/new", csrf, **{**LESSON, "quiz_answer": ""})
        no_answer_page = await no_answer.text()
    finally:
        await browser.client.session.close()
    assert response.status == 422
    assert "有 3 处需要修改" in page
    assert re.search(r'id="problem-title">必填', page)
    assert re.search(r'id="problem-url">请填写以 https:// 或 http:// 开头的网址', page)
    assert re.search(r'id="problem-quiz_answer">正确答案必须是已填写的选项之一', page)
    assert 'value="学习新修订的支部工作条例"' not in page  # the emptied title stays empty
    assert 'value="每季度"' in page  # what was typed is kept for the correction
    assert no_answer.status == 422 and 'id="problem-quiz_answer">必填' in no_answer_page
    assert await count(console, Article) == before


async def test_the_preview_shows_the_members_message_and_saves_nothing(console: Console) -> None:
    before = await count(console, Article)
    browser, csrf = await admin(console)
    try:
        response = await post(browser, "/admin/content/new", csrf, action="preview", **LESSON)
        page = await response.text()
    finally:
        await browser.client.session.close()
    assert response.status == 200
    assert "预览：成员收到的消息" in page
    assert "【微党课】学习新修订的支部工作条例" in page and "【随堂测验】" in page
    assert await count(console, Article) == before


async def test_an_edit_keeps_the_old_version_which_can_be_restored(console: Console) -> None:
    browser, csrf = await admin(console)
    try:
        lesson_id = created_id(await post(browser, "/admin/content/new", csrf, **LESSON))
        path = f"/admin/content/{lesson_id}"
        edited = await post(browser, path, csrf, **{**LESSON, "title": "条例学习（修订）"})
        assert edited.headers["Location"] == f"{path}?saved=saved"
        same = await post(browser, path, csrf, **{**LESSON, "title": "条例学习（修订）"})
        assert same.headers["Location"] == f"{path}?saved=same"
        async with console.client.app[CONVERSATION].sessions() as session:
            kept = list(await session.exec(select(ArticleVersion)))
        assert len(kept) == 1 and "学习新修订的支部工作条例" in kept[0].fields
        version_page = await (await browser.client.get(f"{path}/versions/{kept[0].id}")).text()
        assert "【微党课】学习新修订的支部工作条例" in version_page and "刘洋" in version_page
        restored = await post(browser, f"{path}/versions/{kept[0].id}/restore", csrf)
        assert restored.headers["Location"] == f"{path}?saved=restored"
    finally:
        await browser.client.session.close()
    assert (await article(console, lesson_id)).title == "学习新修订的支部工作条例"
    assert await count(console, ArticleVersion) == 2  # restoring kept the edited text too
    actions = await count(
        console, AuditEntry, col(AuditEntry.action).in_(["article.edit", "article.restore"])
    )
    assert actions == 2


async def test_a_version_of_another_article_is_not_found(console: Console) -> None:
    browser, csrf = await admin(console)
    try:
        first = created_id(await post(browser, "/admin/content/new", csrf, **LESSON))
        second = created_id(
            await post(browser, "/admin/content/new", csrf, **{**LESSON, "title": "另一课"})
        )
        await post(browser, f"/admin/content/{first}", csrf, **{**LESSON, "title": "改过"})
        async with console.client.app[CONVERSATION].sessions() as session:
            version = (await session.exec(select(ArticleVersion))).one()
        wrong = f"/admin/content/{second}/versions/{version.id}"
        assert (await browser.client.get(wrong)).status == 404
        assert (await post(browser, f"{wrong}/restore", csrf)).status == 404
    finally:
        await browser.client.session.close()
    assert (await article(console, second)).title == "另一课"


async def test_a_scheduled_item_waits_and_a_taken_down_one_is_neither_read_nor_pushed(
    console: Console,
) -> None:
    later = {**LESSON, "title": "下周的课", "publish_at": "2026-11-26T07:00"}
    browser, csrf = await admin(console)
    try:
        lesson_id = created_id(await post(browser, "/admin/content/new", csrf, **later))
        assert "下周的课" not in await console.chat.say("1001", "微党课")
        published = await post(browser, f"/admin/content/{lesson_id}/publish", csrf, shown="1")
        assert published.headers["Location"].endswith("saved=published")
        assert "下周的课" in await console.chat.say("1001", "微党课")
        await post(browser, f"/admin/content/{lesson_id}/publish", csrf, shown="0")
    finally:
        await browser.client.session.close()
    assert "下周的课" not in await console.chat.say("1001", "微党课")
    sessions = console.client.app[CONVERSATION].sessions
    async with transaction(sessions) as session:
        pushed = await articles.take_next_to_push(session, ArticleKind.LESSON, console.clock.now())
    assert pushed is None or pushed.id != lesson_id
    assert (await article(console, lesson_id)).pushed_at is None


async def test_a_video_is_watched_with_weixin_video(console: Console) -> None:
    video = {
        "kind": "video",
        "title": "红色家书",
        "summary": "三分钟读一封家书",
        "body": "",
        "url": "https://example.org/v/1.mp4",
        "publish_at": "2026-11-25T08:00",
    }
    browser, csrf = await admin(console)
    try:
        missing = await post(browser, "/admin/content/new", csrf, **{**video, "url": ""})
        assert (
            missing.status == 422
            and 'id="problem-url">请填写视频链接，或上传 MP4 视频文件' in await missing.text()
        )
        created_id(await post(browser, "/admin/content/new", csrf, **video))
    finally:
        await browser.client.session.close()
    reply = await console.chat.say("1001", "微视频")
    assert "【微视频】红色家书" in reply and "观看：https://example.org/v/1.mp4" in reply


async def test_secretaries_and_forged_posts_change_no_content(console: Console) -> None:
    browser, csrf = await admin(console)
    try:
        lesson_id = created_id(await post(browser, "/admin/content/new", csrf, **LESSON))
        forged = await post(browser, f"/admin/content/{lesson_id}", "wrong", title="伪造")
        assert forged.status == 403
    finally:
        await browser.client.session.close()
    secretary_csrf = await console.sign_in("1003")
    for path in ("/admin/content", "/admin/content/new", f"/admin/content/{lesson_id}"):
        assert (await console.client.get(path)).status == 404, path
    changed = await post(console, f"/admin/content/{lesson_id}", secretary_csrf, **LESSON)
    assert changed.status == 404
    hidden = await post(console, f"/admin/content/{lesson_id}/publish", secretary_csrf, shown="0")
    assert hidden.status == 404
    saved = await article(console, lesson_id)
    assert saved.title == LESSON["title"] and not saved.hidden
    assert "内容</a>" not in await (await console.client.get("/admin/")).text()


async def test_content_sync_leaves_an_article_edited_in_the_console(console: Console) -> None:
    shipped = read_all()
    sessions = console.client.app[CONVERSATION].sessions
    async with sessions() as session:
        stored = (await session.exec(select(Article).where(Article.slug == shipped[0].slug))).one()
    browser, csrf = await admin(console)
    try:
        form = {
            "kind": stored.kind,
            "title": "办公室改过的标题",
            "summary": stored.summary,
            "body": stored.body,
            "url": stored.url,
            "publish_at": stored.publish_at.astimezone(console.clock.zone).strftime(
                "%Y-%m-%dT%H:%M"
            ),
        }
        saved = await post(browser, f"/admin/content/{stored.id}", csrf, **form)
        assert saved.headers["Location"].endswith("saved=saved")
    finally:
        await browser.client.session.close()
    async with transaction(sessions) as session:
        synced = await articles.upsert(session, read_all())
    assert synced.skipped == [stored.slug]
    assert synced.added == 0 and synced.updated == len(shipped) - 1
    assert (await article(console, stored.id or 0)).title == "办公室改过的标题"


def test_a_time_without_the_day_or_with_an_offset_is_refused() -> None:
    from zoneinfo import ZoneInfo

    from bot.content_editing import Problem, check

    zone = ZoneInfo("Asia/Shanghai")
    for when in ("", "15:00", "2026-13-01T10:00", "2026-11-25T10:00+00:00"):
        checked = check({**LESSON, "publish_at": when}, zone)
        assert checked == [Problem("publish_at", "bad_time")], when
    good = check(LESSON, zone)
    assert not isinstance(good, list)
    assert good.publish_at == dt.datetime(2026, 11, 25, 8, 30, tzinfo=zone)


async def test_the_live_preview_answers_a_fragment_and_saves_nothing(console: Console) -> None:
    before = await count(console, Article)
    browser, csrf = await admin(console)
    try:
        whole = await post(browser, "/admin/content/preview", csrf, **LESSON)
        missing = await post(browser, "/admin/content/preview", csrf, **{**LESSON, "title": ""})
    finally:
        await browser.client.session.close()
    fragment = await whole.text()
    assert whole.status == 200 and "<html" not in fragment
    assert "【微党课】学习新修订的支部工作条例" in fragment and "【随堂测验】" in fragment
    assert "标题：必填" in await missing.text()
    assert await count(console, Article) == before
    secretary_csrf = await console.sign_in("1003")
    refused = await post(console, "/admin/content/preview", secretary_csrf, **LESSON)
    assert refused.status == 404
