"""`qiyi serve --workers N`: N processes sharing the port, run by gunicorn with aiohttp's
worker. Each worker is stateless apart from the database; the dispatchers share the outbox
(rows claimed with SKIP LOCKED) and one of them, elected, runs the scheduler."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from gunicorn.app.base import BaseApplication

from bot.app import create_app
from bot.settings import ConfigError, Settings, load_settings


async def app() -> web.Application:
    """The worker's application (gunicorn imports `bot.workers:app`)."""
    # Migrations ran once in the parent before the workers started.
    return create_app(load_settings(), run_migrations=False)


class Workers(BaseApplication):  # type: ignore[misc]
    """gunicorn's documented custom-application hook: options from code, not a config file."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return app


def check(settings: Settings, workers: int) -> None:
    if workers > 1 and not settings.database_url.startswith("postgresql"):
        raise ConfigError(
            "--workers needs PostgreSQL (QIYI_DATABASE_URL=postgresql+asyncpg://…): "
            "SQLite serves one process"
        )


def run(host: str, port: int, workers: int, *, access_log: bool = False) -> None:
    Workers(
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "worker_class": "aiohttp.GunicornWebWorker",
            "graceful_timeout": 30,
            "accesslog": "-" if access_log else None,
            # Each worker listens on a socket of its own (SO_REUSEPORT) and the kernel spreads
            # new connections evenly over them; on one shared socket, a burst of long-lived
            # keep-alive connections (nginx's upstream pool) can all land on one worker.
            "reuse_port": True,
        }
    ).run()
