"""Shared fixtures: a migrated database (SQLite always, PostgreSQL when configured), a fixed
clock in Asia/Shanghai, the conversation, and helpers to talk to the bot as a member."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.app import build_conversation
from bot.clock import FixedClock
from bot.conversation import Conversation
from bot.messages import Inbound, InboundKind, Sender
from bot.settings import Settings
from content.library import read_all
from data import articles, members, migrate
from data.db import create_engine, transaction
from data.media.s3 import S3Store
from data.media.store import MediaStore, open_store
from data.members import RosterRow
from data.models import Role

SHANGHAI = ZoneInfo("Asia/Shanghai")
# A Wednesday morning; lessons of 2026-11-02 … 11-23 are published by then.
MORNING = dt.datetime(2026, 11, 25, 9, 0, tzinfo=SHANGHAI)
TOKEN = "test-token"
POSTGRES_ENV = "QIYI_TEST_DATABASE_URL"

ROSTER = [
    RosterRow("1001", "张三", "第一党支部", Role.MEMBER),
    RosterRow("1002", "李四", "第一党支部", Role.MEMBER),
    RosterRow("1003", "王芳", "第一党支部", Role.SECRETARY),
    RosterRow("2001", "赵强", "第二党支部", Role.MEMBER),
    RosterRow("2002", "陈静", "第二党支部", Role.SECRETARY),
    RosterRow("9001", "刘洋", "机关党支部", Role.ADMIN),
]


def _backends() -> list[pytest.param]:
    postgres_marks = []
    if not os.environ.get(POSTGRES_ENV):
        if os.environ.get("CI"):
            raise RuntimeError(f"CI must set {POSTGRES_ENV}: the PostgreSQL leg is required there")
        postgres_marks = [
            pytest.mark.skip(reason=f"PostgreSQL leg: set {POSTGRES_ENV} to a test database")
        ]
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="pg", marks=postgres_marks),
    ]


async def _create_database(admin_url: str, name: str, drop: bool = False) -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        if drop:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        else:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this test run's own, so parallel runs on one server don't collide."""
    admin_url = os.environ[POSTGRES_ENV]
    name = f"qiyi_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_create_database(admin_url, name))
    yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_create_database(admin_url, name, drop=True))


@pytest.fixture(params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'qiyi.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """For tests about the server or CLI that need one database, not both."""
    return f"sqlite+aiosqlite:///{tmp_path / 'qiyi.db'}"


async def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


async def _migrate_file(path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await migrate.upgrade(engine)
    await engine.dispose()  # the last connection closed: the log is copied in and removed


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per run, copied for each test (migrating takes
    about a second; tests/data/test_migrations.py runs the migrations themselves)."""
    path = tmp_path_factory.mktemp("migrated") / "qiyi.db"
    asyncio.run(_migrate_file(path))
    return path


@pytest.fixture
async def engine(database_url: str, migrated_sqlite: Path) -> AsyncIterator[AsyncEngine]:
    postgres = database_url.startswith("postgresql")
    if not postgres:  # a copy of the file migrated once for the run
        shutil.copyfile(migrated_sqlite, make_url(database_url).database or "")
    # Inline on SQLite, as the server's message path runs (`data.db.inline_twin`).
    engine = create_engine(database_url, inline=True)
    if postgres:
        await _reset_postgres(database_url)
        await migrate.upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(MORNING)


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "wechat_token": TOKEN,
        "timezone": "Asia/Shanghai",
        "daily_goal_minutes": 120,
        "scheduler": "off",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


async def seed(conversation: Conversation, *, content: bool = True) -> None:
    """The sample roster and, unless told otherwise, the shipped lessons and news."""
    async with transaction(conversation.sessions) as session:
        await members.upsert_roster(session, ROSTER, conversation.clock.now())
        if content:
            await articles.upsert(session, read_all())


@pytest.fixture
async def conversation(settings: Settings, clock: FixedClock, engine: AsyncEngine) -> Conversation:
    conversation = build_conversation(settings, clock, engine)
    await seed(conversation)
    return conversation


@dataclass
class Chat:
    """Talks to the bot as roster members, each through a chat account bound to them."""

    conversation: Conversation
    channel: str = "test"

    def sender(self, roster_id: str) -> Sender:
        return Sender(self.channel, f"account-{roster_id}")

    async def bind(self, roster_id: str) -> None:
        async with transaction(self.conversation.sessions) as session:
            member = await members.member_by_roster_id(session, roster_id)
            assert member is not None
            await members.bind(
                session, self.sender(roster_id), member, self.conversation.clock.now()
            )

    async def say(self, roster_id: str, text: str, key: str | None = None) -> str:
        inbound = Inbound(
            self.sender(roster_id),
            key or uuid.uuid4().hex,
            InboundKind.TEXT,
            self.conversation.clock.now(),
            text,
        )
        return await self.conversation.respond(inbound)


@pytest.fixture
async def chat(conversation: Conversation) -> Chat:
    """A chat with every roster member already bound."""
    talk = Chat(conversation)
    for row in ROSTER:
        await talk.bind(row.member_id)
    return talk


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    """The run's throwaway PostgreSQL database; skipped without one (a failure under CI)."""
    if not os.environ.get(POSTGRES_ENV):
        if os.environ.get("CI"):
            pytest.fail(f"CI must set {POSTGRES_ENV}: the PostgreSQL leg is required there")
        pytest.skip(f"PostgreSQL only: set {POSTGRES_ENV} to a test database")
    # Requested here (a sync fixture) because it runs asyncio.run() itself.
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def isolated_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """For command-line tests: a tmp working directory (no stray .env) and no QIYI_ settings
    from the outer shell."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("QIYI_") and name != POSTGRES_ENV:
            monkeypatch.delenv(name)


# --- the media store: a directory, or S3 on a loopback server ----------------------------


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """host:port of moto's S3 server on loopback, for the whole run; skipped without moto
    (a failure under CI, which installs the test extras)."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("CI must have moto[server] (the test extras) for the S3 media store")
        pytest.skip("S3 media store: pip install 'moto[server]' (in the test extras)")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"{host}:{port}"
    server.stop()


@pytest.fixture(params=["directory", "s3"])
def media_settings(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, object]:
    """The media settings of one backend: a directory, or a bucket of its own on S3."""
    values: dict[str, object] = {"media_dir": tmp_path / "media"}
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        bucket = f"qiyi-{uuid.uuid4().hex[:12]}"
        values["media_s3_url"] = f"s3://test:secret@{endpoint}/{bucket}/media?secure=false"
    return values


@pytest.fixture
async def media_store(media_settings: dict[str, object]) -> MediaStore:
    return await ready_store(media_settings)


async def ready_store(media_settings: dict[str, object]) -> MediaStore:
    """A store for these settings (as each process opens its own), its bucket made."""
    media_dir = media_settings["media_dir"]
    assert isinstance(media_dir, Path)
    store = open_store(media_dir, str(media_settings.get("media_s3_url") or "") or None)
    if isinstance(store, S3Store):
        await store.ensure_bucket()
    return store
