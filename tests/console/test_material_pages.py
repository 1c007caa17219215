"""资料 in the console: a gallery per branch and month from the media store — thumbnails
made on the server, originals and videos shown, documents downloaded as attachments — in
the staff member's scope (another branch's material is a 404, by address too)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from PIL import Image
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bot import thumbnails
from bot.appkeys import CONVERSATION, MEDIA_STORE
from bot.clock import FixedClock, today
from bot.messages import Media
from data import materials
from data.db import transaction
from data.media.store import read_chunks
from data.models import FetchState, Material, MaterialFile, Member
from tests.conftest import make_settings
from tests.console.conftest import AppClientFactory, Console, start_console


@pytest.fixture
async def console(
    aiohttp_client: AppClientFactory,
    database_url: str,
    clock: FixedClock,
    engine: AsyncEngine,
    tmp_path: Path,
) -> Console:
    settings = make_settings(database_url, media_dir=tmp_path / "media")
    return await start_console(aiohttp_client, settings, clock)


def picture(width: int = 1600, height: int = 1200) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (180, 30, 30)).save(out, format="JPEG")
    return out.getvalue()


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


async def sent(
    console: Console, roster_id: str, kind: str, data: bytes | None, mime: str, caption: str
) -> int:
    """A material the member sent today, its file kept (or, with no data, still pending)."""
    conversation = console.client.app[CONVERSATION]
    store = console.client.app[MEDIA_STORE]
    now = console.clock.now()
    async with transaction(conversation.sessions) as session:
        member = (await session.exec(select(Member).where(Member.roster_id == roster_id))).one()
        assert member.id is not None
        media = [Media(kind, f"media-{roster_id}-{caption}")]
        await materials.add(
            session,
            member.branch_id,
            member.id,
            "wechat",
            media,
            caption,
            today(console.clock),
            now,
        )
        material = (
            await session.exec(select(Material).order_by(col(Material.id).desc()).limit(1))
        ).one()
    assert material.id is not None
    if data is not None:
        kept = await store.put(read_chunks(io.BytesIO(data)), limit=len(data) + 1)
        async with transaction(conversation.sessions) as session:
            await session.exec(
                update(MaterialFile)
                .where(col(MaterialFile.material_id) == material.id)
                .values(
                    state=FetchState.STORED.value,
                    sha256=kept.sha256,
                    size=kept.size,
                    mime=mime,
                    original_name="会议记录.pdf" if mime == "application/pdf" else "",
                )
            )
    return material.id


async def admin(console: Console) -> Console:
    other = Console(TestClient(console.client.server), console.chat, console.clock)
    await other.client.start_server()
    await other.sign_in("9001")
    return other


async def test_a_secretary_sees_their_branchs_gallery_and_its_files(console: Console) -> None:
    photo = await sent(console, "1003", "image", picture(), "image/jpeg", "主题党日合影")
    minutes = await sent(console, "1003", "file", PDF, "application/pdf", "会议记录")
    waiting = await sent(console, "1003", "video", None, "", "学习视频")
    await console.sign_in("1003")

    page = await (await console.client.get("/admin/materials")).text()
    assert "第一党支部" in page and "3 份" in page
    assert f'src="/admin/materials/{photo}/thumb"' in page and "主题党日合影" in page
    assert f'href="/admin/materials/{minutes}/file" download' in page
    assert "文件正在保存" in page and "王芳" in page

    thumb = await console.client.get(f"/admin/materials/{photo}/thumb")
    assert thumb.status == 200 and thumb.content_type == "image/jpeg"
    small = Image.open(io.BytesIO(await thumb.read()))
    assert max(small.size) == thumbnails.SIZE and small.size == (320, 240)
    original = await console.client.get(f"/admin/materials/{photo}/file")
    assert await original.read() == picture()
    assert original.headers["Content-Disposition"].startswith("inline")

    document = await console.client.get(f"/admin/materials/{minutes}/file")
    assert document.content_type == "application/pdf"
    assert document.headers["Content-Disposition"] == (
        "attachment; filename*=UTF-8''%E4%BC%9A%E8%AE%AE%E8%AE%B0%E5%BD%95.pdf"
    )
    assert document.headers["X-Content-Type-Options"] == "nosniff"
    assert await document.read() == PDF
    assert (await console.client.get(f"/admin/materials/{waiting}/file")).status == 404
    assert (await console.client.get(f"/admin/materials/{minutes}/thumb")).status == 404


async def test_another_branchs_material_is_not_found_by_any_address(console: Console) -> None:
    theirs = await sent(console, "2002", "image", picture(), "image/jpeg", "第二支部活动")
    async with console.client.app[CONVERSATION].sessions() as session:
        branch = (
            await session.exec(select(Member.branch_id).where(Member.roster_id == "2002"))
        ).one()
    await console.sign_in("1003")
    for path in (
        f"/admin/materials/{theirs}/file",
        f"/admin/materials/{theirs}/thumb",
        f"/admin/materials?branch={branch}",
    ):
        response = await console.client.get(path)
        assert response.status == 404, path
        assert "第二支部活动" not in await response.text()
    own = await (await console.client.get("/admin/materials")).text()
    assert "第二支部活动" not in own


async def test_an_admin_sees_each_branchs_count_then_its_gallery(console: Console) -> None:
    await sent(console, "1003", "image", picture(), "image/jpeg", "一支部")
    await sent(console, "2002", "image", picture(), "image/jpeg", "二支部甲")
    await sent(console, "2002", "image", picture(), "image/jpeg", "二支部乙")
    browser = await admin(console)
    try:
        overview = await (await browser.client.get("/admin/materials")).text()
        async with console.client.app[CONVERSATION].sessions() as session:
            branch = (
                await session.exec(select(Member.branch_id).where(Member.roster_id == "2002"))
            ).one()
        second = await (await browser.client.get(f"/admin/materials?branch={branch}")).text()
        last_month = await (
            await browser.client.get(f"/admin/materials?branch={branch}&month=2026-10")
        ).text()
    finally:
        await browser.client.session.close()
    assert "2026年11月" in overview
    assert overview.count("<strong>") >= 3 and ">2 份</strong>" in overview
    assert "二支部甲" in second and "二支部乙" in second and "一支部" not in second
    assert "这个月还没有报送资料" in last_month


def test_a_picture_claiming_too_many_pixels_is_not_decoded() -> None:
    out = io.BytesIO()
    Image.new("1", (8000, 6000)).save(out, format="PNG")  # 48 megapixels in a few KB
    with pytest.raises(thumbnails.NotAPicture, match="8000x6000"):
        thumbnails.thumbnail(out.getvalue())
    with pytest.raises(thumbnails.NotAPicture):
        thumbnails.thumbnail(b"GIF89a not really")
