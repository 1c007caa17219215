"""A pushed article with a cover goes to WeChat as a 图文 card (picurl: the cover's public
address), an uploaded 微视频 as WeChat video media — uploaded once and reused for every
member while young, uploaded again once expired or forgotten by the platform; a digest and
an article without a link stay text (README "内容", PROTOCOLS.md customer-service message).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from bot.conversation import Conversation
from data.db import transaction
from data.media.directory import DirectoryStore
from data.media.store import MediaStore, Spooled, spool
from data.models import Article, DeliveryAttempt, OutboxItem, OutboxState, PlatformUpload, PushKind
from tests.fakes.wechat_api import MEDIA_UPLOAD, FakeWeChat
from tests.test_dispatcher import (  # noqa: F401 (fixtures)
    Rig,
    RigFactory,
    bind_wechat,
    fake,
    http,
    make_rig,
    openid,
    set_window,
)

PUBLIC = "https://party.example.org"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 4000


async def keep(store: MediaStore, data: bytes) -> str:
    async def chunks() -> AsyncIterator[bytes]:
        yield data

    spooled: Spooled = await spool(chunks(), store.spool_dir, len(data))
    try:
        await store.keep(spooled)
    finally:
        spooled.path.unlink(missing_ok=True)
    return spooled.sha256


async def add_article(conversation: Conversation, **fields: object) -> Article:
    values: dict[str, object] = {
        "slug": f"test-{fields['kind']}-{fields['title']}",
        "summary": "摘要一句话",
        "body": "正文",
        "publish_at": conversation.clock.now(),
    }
    values.update(fields)
    async with transaction(conversation.sessions) as session:
        article = Article(**values)  # type: ignore[arg-type]
        session.add(article)
    return article


@pytest.fixture
def store(tmp_path: Path) -> DirectoryStore:
    return DirectoryStore(tmp_path / "media")


@pytest.fixture
async def media_rig(make_rig: RigFactory, store: DirectoryStore, conversation: Conversation) -> Rig:  # noqa: F811
    rig = make_rig(public_url=PUBLIC, store=store)  # uploaded videos are sent from it
    await bind_wechat(conversation, "1001", "1002")
    for roster_id in ("1001", "1002"):
        await set_window(conversation, roster_id)
    return rig


async def items(conversation: Conversation) -> list[OutboxItem]:
    async with conversation.sessions() as session:
        return list(await session.exec(select(OutboxItem).order_by(OutboxItem.id)))  # type: ignore[arg-type]


async def test_a_lesson_with_a_cover_and_a_link_is_pushed_as_a_news_card(
    media_rig: Rig, store: DirectoryStore, conversation: Conversation
) -> None:
    cover = await keep(store, PNG)
    lesson = await add_article(
        conversation,
        kind="lesson",
        title="封面课",
        url="https://example.org/lesson/1",
        cover=cover,
        cover_mime="image/png",
    )
    assert (await media_rig.enqueue_article(PushKind.LESSON)).subject == lesson.title
    counts = await media_rig.run()
    assert counts["sent"] == 2
    for roster_id in ("1001", "1002"):
        [card] = media_rig.fake.sent_news(openid(roster_id))
        assert card["picurl"] == f"{PUBLIC}/media/c/{cover}.png"
        assert card["url"] == "https://example.org/lesson/1"
        assert card["title"] == "封面课"
        assert "回复“微党课”" in card["description"] and "封面课" not in card["description"]
        assert media_rig.fake.sent_texts(openid(roster_id)) == []
    async with conversation.sessions() as session:
        methods = {a.method for a in await session.exec(select(DeliveryAttempt))}
    assert methods == {"news"}


async def test_without_a_public_address_or_a_link_the_push_stays_text(
    make_rig: RigFactory,  # noqa: F811
    store: DirectoryStore,
    conversation: Conversation,
    fake: FakeWeChat,  # noqa: F811
) -> None:
    rig = make_rig()  # no QIYI_PUBLIC_URL: the cover has no address a phone can fetch
    await bind_wechat(conversation, "1001")
    await set_window(conversation, "1001")
    cover = await keep(store, PNG)
    await add_article(
        conversation,
        kind="news",
        title="无地址",
        url="https://e.org/n",
        cover=cover,
        cover_mime="image/png",
    )
    await rig.enqueue_article(PushKind.NEWS)
    await rig.run()
    assert fake.sent_news() == [] and "无地址" in fake.sent_texts(openid("1001"))[0]
    public = make_rig(public_url=PUBLIC)
    conversation.clock.advance(days=1)
    await add_article(  # a cover but no link: the card would open nothing
        conversation, kind="news", title="无链接", url="", cover=cover, cover_mime="image/png"
    )
    await set_window(conversation, "1001")
    await public.enqueue_article(PushKind.NEWS)
    await public.run()
    assert fake.sent_news() == [] and "无链接" in fake.sent_texts(openid("1001"))[-1]


async def test_a_digest_of_several_pushes_stays_text(
    media_rig: Rig, store: DirectoryStore, conversation: Conversation
) -> None:
    cover = await keep(store, PNG)
    await add_article(
        conversation,
        kind="lesson",
        title="课",
        url="https://e.org/l",
        cover=cover,
        cover_mime="image/png",
    )
    await add_article(
        conversation,
        kind="news",
        title="闻",
        url="https://e.org/n",
        cover=cover,
        cover_mime="image/png",
    )
    await media_rig.enqueue_article(PushKind.LESSON)
    await media_rig.enqueue_article(PushKind.NEWS)
    await media_rig.run()
    assert media_rig.fake.sent_news() == []
    [text] = media_rig.fake.sent_texts(openid("1001"))
    assert "课" in text and "闻" in text


async def test_an_uploaded_video_is_uploaded_once_and_reused_then_again_after_expiry(
    media_rig: Rig, store: DirectoryStore, conversation: Conversation
) -> None:
    wechat = media_rig.fake
    video = await keep(store, MP4)
    await add_article(conversation, kind="video", title="家书", video=video, summary="三分钟")
    await media_rig.enqueue_article(PushKind.VIDEO)
    assert (await media_rig.run())["sent"] == 2
    [upload] = wechat.uploads
    assert upload.type == "video" and upload.data == MP4 and upload.content_type == "video/mp4"
    for roster_id in ("1001", "1002"):
        assert wechat.sent_videos(openid(roster_id)) == [
            {"media_id": upload.media_id, "title": "家书", "description": "三分钟"}
        ]
    # A day later the same file in another item: the media id is reused, nothing uploaded.
    conversation.clock.advance(days=1)
    await add_article(conversation, kind="video", title="家书二", video=video)
    for roster_id in ("1001", "1002"):
        await set_window(conversation, roster_id)
    await media_rig.enqueue_article(PushKind.VIDEO)
    await media_rig.run()
    assert len(wechat.uploads) == 1 and len(wechat.sent_videos()) == 4
    # Past the reuse time (60 hours after the upload): uploaded again, once.
    conversation.clock.advance(hours=36, minutes=1)
    await add_article(conversation, kind="video", title="家书三", video=video)
    for roster_id in ("1001", "1002"):
        await set_window(conversation, roster_id)
    await media_rig.enqueue_article(PushKind.VIDEO)
    await media_rig.run()
    renewed = wechat.uploads[-1].media_id
    assert len(wechat.uploads) == 2 and wechat.sent_videos()[-1]["media_id"] == renewed
    async with conversation.sessions() as session:
        [row] = list(await session.exec(select(PlatformUpload)))
    assert row.media_id == renewed and row.uploaded_at == conversation.clock.now()


async def test_a_video_the_platform_forgot_is_uploaded_again_on_the_retry(
    media_rig: Rig, store: DirectoryStore, conversation: Conversation
) -> None:
    wechat = media_rig.fake
    video = await keep(store, MP4)
    await add_article(conversation, kind="video", title="旧视频", video=video)
    await media_rig.enqueue_article(PushKind.VIDEO)
    await media_rig.run()
    wechat.forget_upload(wechat.uploads[0].media_id)  # gone before our 60 hours are over
    conversation.clock.advance(hours=1)
    await add_article(conversation, kind="video", title="新视频", video=video)
    for roster_id in ("1001", "1002"):
        await set_window(conversation, roster_id)
    await media_rig.enqueue_article(PushKind.VIDEO)
    first = await media_rig.run()
    assert first["sent"] == 0 and first["retry"] == 2
    async with conversation.sessions() as session:
        assert list(await session.exec(select(PlatformUpload))) == []
    conversation.clock.advance(hours=1)  # past the backoff
    await media_rig.run()
    assert len(wechat.calls(MEDIA_UPLOAD)) == 2 and len(wechat.uploads) == 1
    assert [v["title"] for v in wechat.sent_videos()][-2:] == ["新视频", "新视频"]
    assert all(item.state == OutboxState.SENT.value for item in await items(conversation))


@pytest.mark.parametrize(
    ("errcode", "counts", "texts"),
    [
        (-1, Counter(retry=2), 0),  # busy: the push waits for the next try, as a video
        (40164, Counter(failed=2, mailbox=1), 0),  # configuration: failed, the admins told
        (40005, Counter(sent=2), 2),  # the file refused for good: the text and its link
    ],
    ids=["busy", "configuration", "refused"],
)
async def test_a_refused_video_upload_retries_fails_or_sends_the_text_by_its_answer(
    media_rig: Rig,
    store: DirectoryStore,
    conversation: Conversation,
    errcode: int,
    counts: Counter[str],
    texts: int,
) -> None:
    wechat = media_rig.fake
    video = await keep(store, MP4)
    await add_article(conversation, kind="video", title="家书", video=video)
    await media_rig.enqueue_article(PushKind.VIDEO)
    wechat.fail_next(MEDIA_UPLOAD, errcode, times=2)

    assert await media_rig.run() + await media_rig.run() == counts

    assert wechat.sent_videos() == [] and wechat.uploads == []
    assert len(wechat.sent_texts()) == texts
    if texts:
        assert f"观看：{PUBLIC}/media/v/{video}.mp4" in wechat.sent_texts(openid("1001"))[0]
    async with conversation.sessions() as session:
        assert list(await session.exec(select(PlatformUpload))) == []


async def test_a_missing_video_file_sends_the_text_with_its_link(
    media_rig: Rig, conversation: Conversation
) -> None:
    await add_article(conversation, kind="video", title="丢了", video="ab" * 32)
    await media_rig.enqueue_article(PushKind.VIDEO)
    await media_rig.run()
    assert media_rig.fake.calls(MEDIA_UPLOAD) == [] and media_rig.fake.sent_videos() == []
    [text] = media_rig.fake.sent_texts(openid("1001"))
    assert f"观看：{PUBLIC}/media/v/{'ab' * 32}.mp4" in text


def test_the_reuse_time_is_below_the_platforms_three_days() -> None:
    from bot.settings import Settings

    assert dt.timedelta(hours=Settings.model_fields["upload_reuse_hours"].default) < dt.timedelta(
        days=3
    )
