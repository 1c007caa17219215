"""The aiohttp application factory: resources live on the app's lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import public_media
from bot.appkeys import CONVERSATION, ENGINE, MEDIA_STORE, QQBOT_API, SESSIONS, SETTINGS
from bot.channels import public_web, wechat_menu
from bot.channels.onebot import OneBotWebhook
from bot.channels.onebot_api import OneBotApi
from bot.channels.qqbot import QQBotApi, QQBotWebhook
from bot.channels.wechat import MAX_BODY_BYTES, WeChatWebhook
from bot.channels.wechat_api import WeChatApi
from bot.channels.wecom import WeComWebhook
from bot.channels.wecom_api import WeComApi
from bot.clock import Clock, SystemClock
from bot.conversation import Conversation
from bot.dispatcher import Dispatcher
from bot.material_fetch import MaterialFetcher
from bot.rules import Rules, load_rules
from bot.settings import Settings
from console.app import create_console
from data import migrate, sqlite_inline
from data.db import Sessions, create_engine, inline_twin, session_factory
from data.media.s3 import S3Store
from data.media.store import open_store
from scheduler.jobs import PushJobs, build_scheduler
from scheduler.leader import Leadership

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


def _scheduler_switch(scheduler: AsyncIOScheduler) -> tuple[Callable[[], None], Callable[[], None]]:
    """What winning and losing the scheduler election do: run the jobs, or hold them."""

    def elected() -> None:
        if scheduler.running:
            scheduler.resume()
        else:
            scheduler.start()

    def deposed() -> None:
        if scheduler.running:
            scheduler.pause()

    return elected, deposed


def wechat_api_for(
    settings: Settings, http: aiohttp.ClientSession, sessions: Sessions, clock: Clock
) -> WeChatApi | None:
    """The outbound API when AppID and AppSecret are configured; without them pushes wait
    in the members' mailboxes."""
    if not (settings.wechat_appid and settings.wechat_secret):
        return None
    return WeChatApi(
        http,
        sessions,
        clock,
        base=settings.wechat_api_base,
        appid=settings.wechat_appid,
        secret=settings.wechat_secret,
    )


def wecom_api_for(
    settings: Settings, http: aiohttp.ClientSession, sessions: Sessions, clock: Clock
) -> WeComApi | None:
    """The WeCom app's API when CorpID, AgentId and Secret are configured: the ladder's WeCom
    rung (bot/ladder.py) is there only with it."""
    if not settings.wecom_api_ready:
        return None
    assert settings.wecom_corp_id and settings.wecom_agent_id and settings.wecom_secret
    return WeComApi(
        http,
        sessions,
        clock,
        base=settings.wecom_api_base,
        corp_id=settings.wecom_corp_id,
        agent_id=settings.wecom_agent_id,
        secret=settings.wecom_secret,
    )


def create_app(
    settings: Settings,
    clock: Clock | None = None,
    *,
    run_migrations: bool = True,
    background: bool = True,
) -> web.Application:
    """The server: `/healthz` and the webhooks of the configured channels (`/wechat`,
    `/wecom`, `/onebot`, `/qqbot`), on one engine opened at start and closed at stop, with the
    dispatcher and the scheduler in the background (`background=False`: neither)."""
    clock = clock or SystemClock(settings.zone)
    rules = load_rules(settings.rules_file)  # a bad rules file fails here, not on a message
    settings.require_a_channel()
    qqbot = QQBotWebhook(settings, clock) if settings.qqbot_enabled else None
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app[MEDIA_STORE] = open_store(settings.media_dir, settings.media_s3_url)

    async def database(app: web.Application) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url)
        if run_migrations:
            await migrate.upgrade(engine)
            await migrate.refresh_statistics(engine)
        app[ENGINE] = engine
        app[SESSIONS] = session_factory(engine)
        messages = inline_twin(engine)  # SQLite: the message path without a thread hop
        app[CONVERSATION] = build_conversation(settings, clock, messages, rules)
        async with sqlite_inline.checkpoints_off_the_loop(messages):
            yield
        if messages is not engine:
            await messages.dispose()
        await engine.dispose()

    async def pushing(app: web.Application) -> AsyncIterator[None]:
        """The dispatcher always runs; the scheduler when QIYI_SCHEDULER=on."""
        sessions = session_factory(app[ENGINE])
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
            contextlib.AsyncExitStack() as stack,
        ):
            wechat = wechat_api_for(settings, http, sessions, clock)
            onebot = OneBotApi(http, settings) if settings.onebot_api_url else None
            wecom = wecom_api_for(settings, http, sessions, clock)
            dispatcher = Dispatcher(
                settings,
                clock,
                sessions,
                wechat,
                onebot=onebot,
                wecom=wecom,
                store=app[MEDIA_STORE],
            )
            if qqbot is not None:
                app[QQBOT_API] = QQBotApi(http, sessions, clock, settings)
            stop = asyncio.Event()
            task = asyncio.create_task(dispatcher.run_forever(stop), name="dispatcher")
            scheduler = None
            election = None
            if settings.scheduler == "on":
                context = app[CONVERSATION].report_context
                web = await stack.enter_async_context(
                    public_web.fetching_session(settings.media_fetch_private_ok)
                )
                fetcher = MaterialFetcher(settings, clock, sessions, app[MEDIA_STORE], web, wechat)
                jobs = PushJobs(settings, clock, sessions, context, fetcher)
                scheduler = build_scheduler(settings, jobs)
                leadership = Leadership(app[ENGINE], *_scheduler_switch(scheduler))
                await leadership.try_once()  # the first server up leads from the start
                election = asyncio.create_task(leadership.run(stop), name="scheduler election")
            yield
            stop.set()
            if election is not None:
                await election
            if scheduler is not None and scheduler.running:
                scheduler.shutdown(wait=False)
                await asyncio.sleep(0)  # APScheduler stops on the next loop turn
            await task
            if qqbot is not None:
                await qqbot.drain()

    app.cleanup_ctx.append(database)
    app.on_startup.append(_media_bucket)
    if background:
        app.cleanup_ctx.append(pushing)
    click_commands = wechat_menu.click_commands(wechat_menu.load())
    if settings.wechat_token:
        app.router.add_routes(WeChatWebhook(settings, clock, click_commands).routes())
    if settings.wecom_enabled:
        app.router.add_routes(WeComWebhook(settings, clock, click_commands).routes())
    if settings.onebot_enabled:
        app.router.add_routes(OneBotWebhook(settings, clock).routes())
    if qqbot is not None:
        app.router.add_routes(qqbot.routes())
    app.router.add_get("/healthz", healthz)
    public_media.add_routes(app, clock)
    app.router.add_get("/admin", _to_console)
    app.add_subapp("/admin/", create_console(clock))
    return app


async def _media_bucket(app: web.Application) -> None:
    """The S3 bucket of the media store, made on a first start; a bucket that cannot be had
    is logged (each fetch then fails and is retried), not fatal to the server."""
    store = app[MEDIA_STORE]
    if isinstance(store, S3Store):
        try:
            await store.ensure_bucket()
        except Exception:
            log.exception("media store: the S3 bucket %s cannot be had", store.bucket)


async def _to_console(_request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently("/admin/")


async def healthz(request: web.Request) -> web.Response:
    try:
        async with request.app[ENGINE].connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        log.exception("health check: database unreachable")
        return web.json_response({"status": "error", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})
