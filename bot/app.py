"""The aiohttp application factory: resources live on the app's lifecycle."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.appkeys import CONVERSATION, ENGINE, SETTINGS
from bot.channels import wechat_menu
from bot.channels.wechat import MAX_BODY_BYTES, WeChatWebhook
from bot.clock import Clock, SystemClock
from bot.conversation import Conversation
from bot.rules import Rules, load_rules
from bot.settings import Settings
from data import migrate
from data.db import create_engine, session_factory

log = logging.getLogger(__name__)


def build_conversation(
    settings: Settings, clock: Clock, engine: AsyncEngine, rules: Rules | None = None
) -> Conversation:
    from handlers import router  # imported here: importing it declares every command

    return Conversation(
        settings=settings,
        clock=clock,
        sessions=session_factory(engine),
        rules=rules or load_rules(settings.rules_file),
        router=router,
    )


def create_app(
    settings: Settings, clock: Clock | None = None, *, run_migrations: bool = True
) -> web.Application:
    """The server: `/wechat` and `/healthz`, on one engine opened at start and closed at stop."""
    clock = clock or SystemClock(settings.zone)
    rules = load_rules(settings.rules_file)  # a bad rules file fails here, not on a message
    webhook = WeChatWebhook(settings, clock, wechat_menu.click_commands(wechat_menu.load()))
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings

    async def database(app: web.Application) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url)
        if run_migrations:
            await migrate.upgrade(engine)
        app[ENGINE] = engine
        app[CONVERSATION] = build_conversation(settings, clock, engine, rules)
        yield
        await engine.dispose()

    app.cleanup_ctx.append(database)
    app.router.add_routes(webhook.routes())
    app.router.add_get("/healthz", healthz)
    return app


async def healthz(request: web.Request) -> web.Response:
    try:
        async with request.app[ENGINE].connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        log.exception("health check: database unreachable")
        return web.json_response({"status": "error", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})
