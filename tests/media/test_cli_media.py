"""`qiyi media fetch`: failed fetches are retried now, through the same fetcher."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlmodel import select
from typer.testing import CliRunner

from bot.cli import app
from bot.messages import Media
from data import materials, members, migrate
from data.db import create_engine, session_factory, transaction
from data.media.store import fan_out
from data.models import FetchState, MaterialFile
from tests.conftest import MORNING, ROSTER
from tests.fakes.wechat_api import FakeWeChat

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(300)

pytestmark = pytest.mark.usefixtures("isolated_cli")


async def failed_material(url: str, reference: str, channel: str = "wechat") -> None:
    """A material whose fetch failed (the platform had not found its media)."""
    engine = create_engine(url)
    await migrate.upgrade(engine)
    async with transaction(session_factory(engine)) as session:
        await members.upsert_roster(session, ROSTER, MORNING)
        secretary = await members.member_by_roster_id(session, "1003")
        assert secretary is not None and secretary.id is not None
        await materials.add(
            session,
            secretary.branch_id,
            secretary.id,
            channel,
            [Media("image", reference)],
            "",
            MORNING.date(),
            MORNING,
        )
        file = (await session.exec(select(MaterialFile))).one()
        file.state, file.attempts, file.last_error = "failed", 1, "40007 invalid media_id"
        session.add(file)
    await engine.dispose()


async def stored_states(url: str) -> list[str]:
    engine = create_engine(url)
    async with session_factory(engine)() as session:
        files = list(await session.exec(select(MaterialFile)))
    await engine.dispose()
    return [file.state for file in files]


async def test_media_fetch_retries_the_failed_now(sqlite_url: str, tmp_path: Path) -> None:
    fake = FakeWeChat()
    media_id = fake.add_media(JPEG, content_type="image/jpeg")
    await failed_material(sqlite_url, media_id)
    async with TestServer(fake.app(), host="127.0.0.1") as server:
        env = {
            "QIYI_DATABASE_URL": sqlite_url,
            "QIYI_WECHAT_API_BASE": str(server.make_url("")).rstrip("/"),
            "QIYI_WECHAT_APPID": fake.appid,
            "QIYI_WECHAT_SECRET": fake.secret,
            "QIYI_MEDIA_DIR": str(tmp_path / "media"),
        }
        # The CLI runs its own event loop: give it a thread so this loop keeps serving.
        result = await asyncio.to_thread(
            CliRunner().invoke, app, ["media", "fetch", "--json"], env=env
        )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer == {"retried": 1, "fetched": {"stored": 1}, "states": {"stored": 1}}
    assert await stored_states(sqlite_url) == [FetchState.STORED.value]
    kept = tmp_path / "media" / fan_out(hashlib.sha256(JPEG).hexdigest())
    assert kept.read_bytes() == JPEG


async def qq_pictures() -> web.Application:
    app = web.Application()

    async def picture(_request: web.Request) -> web.Response:
        return web.Response(body=JPEG, content_type="image/jpeg")

    app.router.add_get("/pic.jpg", picture)
    return app


@pytest.mark.parametrize("private_ok", [False, True])
async def test_media_fetch_reaches_a_private_address_only_when_allowed(
    sqlite_url: str, tmp_path: Path, private_ok: bool
) -> None:
    """A QQ picture's URL naming a host on the server's own network is refused unless
    QIYI_MEDIA_FETCH_PRIVATE_OK says the OneBot implementation serves files there."""
    async with TestServer(await qq_pictures(), host="127.0.0.1") as server:
        await failed_material(sqlite_url, f"http://localhost:{server.port}/pic.jpg", "qq")
        env = {
            "QIYI_DATABASE_URL": sqlite_url,
            "QIYI_MEDIA_DIR": str(tmp_path / "media"),
            "QIYI_MEDIA_FETCH_PRIVATE_OK": str(private_ok).lower(),
        }
        result = await asyncio.to_thread(
            CliRunner().invoke, app, ["media", "fetch", "--json"], env=env
        )
    assert result.exit_code == 0, result.output
    state = "stored" if private_ok else "failed"
    assert json.loads(result.stdout)["fetched"] == {state: 1}
    assert await stored_states(sqlite_url) == [state]
