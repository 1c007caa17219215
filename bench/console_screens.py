"""Screenshots of the console's pages with sample data, at a PC's width and a phone's (390 px),
taken by Debian's Chromium through Playwright: `python -m bench.console_screens [--out DIR]`.

The server runs on loopback on a throwaway SQLite database; the browser signs in the way a
secretary does, by sending the page's code to the bot (here: straight to the conversation).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import re
import tempfile
import uuid
from pathlib import Path

from aiohttp import web
from PIL import Image
from playwright.async_api import async_playwright
from sqlalchemy import update
from sqlmodel import col

from bot.app import create_app
from bot.appkeys import CONVERSATION, MEDIA_STORE
from bot.clock import SystemClock
from bot.demo import ROSTER
from bot.messages import Inbound, InboundKind, Media, Sender
from bot.settings import Settings
from data import articles, materials, members
from data.db import transaction
from data.media.store import read_chunks
from data.models import Article, FetchState, MaterialFile

CHROMIUM = "/usr/bin/chromium"
WIDTHS = {"pc": 1280, "phone": 390}


async def _say(app: web.Application, roster_id: str, text: str) -> str:
    conversation = app[CONVERSATION]
    sender = Sender("wechat", f"screens-{roster_id}")
    inbound = Inbound(sender, uuid.uuid4().hex, InboundKind.TEXT, conversation.clock.now(), text)
    return await conversation.respond(inbound)


async def _seed(app: web.Application) -> int:
    """The sample data; the id of the branch whose secretary sent materials."""
    from content.library import read_all

    conversation = app[CONVERSATION]
    now = conversation.clock.now()
    async with transaction(conversation.sessions) as session:
        await members.upsert_roster(session, ROSTER, now)
        await articles.upsert(session, read_all())
        for row in ROSTER:
            member = await members.member_by_roster_id(session, row.member_id)
            assert member is not None
            await members.bind(session, Sender("wechat", f"screens-{row.member_id}"), member, now)
    for roster_id, minutes in (("1001", 120), ("1002", 45), ("2001", 90)):
        await _say(app, roster_id, f"学习 {minutes}")
    await _say(app, "1002", "志愿 2 社区敬老院陪老人聊天")
    await _seed_cover(app)
    return await _seed_materials(app)


async def _seed_cover(app: web.Application) -> None:
    """A cover picture and a link on the first lesson, as if uploaded in the editor."""
    conversation = app[CONVERSATION]
    data = _picture(200)
    kept = await app[MEDIA_STORE].put(read_chunks(io.BytesIO(data)), limit=len(data) + 1)
    async with transaction(conversation.sessions) as session:
        await session.exec(
            update(Article)
            .where(col(Article.id) == 1)
            .values(cover=kept.sha256, cover_mime="image/jpeg", url="https://example.org/lesson/1")
        )


def _picture(hue: int) -> bytes:
    """A made-up photo: a soft gradient in one colour."""
    image = Image.new("RGB", (800, 600))
    pixels = [
        (min(255, hue + y // 6), 60 + x // 8, 90 + (x + y) // 12)
        for y in range(600)
        for x in range(800)
    ]
    image.putdata(pixels)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


async def _seed_materials(app: web.Application) -> int:
    """Three pictures the first branch's secretary sent, kept in the media store."""
    conversation = app[CONVERSATION]
    store = app[MEDIA_STORE]
    now = conversation.clock.now()
    captions = ("主题党日：重温入党誓词", "党员先锋岗挂牌", "志愿服务进社区")
    async with transaction(conversation.sessions) as session:
        secretary = await members.member_by_roster_id(session, "1003")
        assert secretary is not None and secretary.id is not None
        for number, caption in enumerate(captions):
            media = [Media("image", f"screens-{number}")]
            await materials.add(
                session,
                secretary.branch_id,
                secretary.id,
                "wechat",
                media,
                caption,
                now.date(),
                now,
            )
    for number, hue in enumerate((150, 90, 30)):
        data = _picture(hue)
        kept = await store.put(read_chunks(io.BytesIO(data)), limit=len(data) + 1)
        async with transaction(conversation.sessions) as session:
            await session.exec(
                update(MaterialFile)
                .where(col(MaterialFile.material_id) == number + 1)
                .values(
                    state=FetchState.STORED.value,
                    sha256=kept.sha256,
                    size=kept.size,
                    mime="image/jpeg",
                )
            )
    return secretary.branch_id


async def take(out: Path) -> list[Path]:
    """`out` must exist."""
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            database_url=f"sqlite+aiosqlite:///{folder}/screens.db",
            media_dir=Path(folder) / "media",
            wechat_token="screens",
            scheduler="off",
            public_url="http://party.example.org",  # http: the browser keeps its cookie
        )
        app = create_app(settings, SystemClock(settings.zone), background=False)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        taken: list[Path] = []
        try:
            branch_id = await _seed(app)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox"]
                )
                for label, width in WIDTHS.items():
                    page = await browser.new_page(viewport={"width": width, "height": 900})
                    await page.goto(f"{base}/admin/login")
                    taken.append(out / f"login-{label}.png")
                    await page.screenshot(path=taken[-1], full_page=True)
                    code = re.search(r"登录 (\d{6})", await page.content())
                    assert code, "no code on the sign-in page"
                    await _say(app, "9001", f"登录 {code.group(1)}")
                    await page.wait_for_url(f"{base}/admin/", timeout=15_000)
                    for name, path in (
                        ("dashboard", "/admin/"),
                        ("members", "/admin/members"),
                        ("member", "/admin/members/1"),
                        ("approvals", "/admin/approvals"),
                        ("content", "/admin/content/1"),
                        ("materials", f"/admin/materials?branch={branch_id}"),
                        ("pushes", "/admin/pushes"),
                        ("notice", "/admin/notices/new"),
                        ("reports", "/admin/reports"),
                        ("audit", "/admin/audit"),
                        ("sessions", "/admin/sessions"),
                    ):
                        await page.goto(base + path)
                        if name == "reports":  # computed aside: the page reloads until it is in
                            await page.wait_for_selector("table.list", timeout=60_000)
                        taken.append(out / f"{name}-{label}.png")
                        await page.screenshot(path=taken[-1], full_page=True)
                    await page.close()
                await browser.close()
        finally:
            await runner.cleanup()
    return taken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/screens"))
    arguments = parser.parse_args()
    arguments.out.mkdir(parents=True, exist_ok=True)
    for path in asyncio.run(take(arguments.out)):
        print(path)


if __name__ == "__main__":
    main()
