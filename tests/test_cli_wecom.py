"""`qiyi wecom menu [--push]` against the fake WeCom on loopback."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp.test_utils import TestServer
from typer.testing import CliRunner, Result

from bot.channels import wechat_menu
from bot.cli import app
from bot.settings import ConfigError
from tests.fakes.wecom_api import MENU_CREATE, FakeWeCom

pytestmark = pytest.mark.usefixtures("isolated_cli")


@pytest.fixture
def env(sqlite_url: str) -> dict[str, str]:
    return {"QIYI_DATABASE_URL": sqlite_url, "QIYI_SCHEDULER": "off"}


def invoke(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


async def push_menu(fake: FakeWeCom, env: dict[str, str]) -> Result:
    async with TestServer(fake.app(), host="127.0.0.1") as server:
        push_env = env | {
            "QIYI_WECOM_API_BASE": str(server.make_url("")).rstrip("/"),
            "QIYI_WECOM_CORP_ID": fake.corp_id,
            "QIYI_WECOM_AGENT_ID": str(fake.agent_id),
            "QIYI_WECOM_SECRET": fake.secret,
        }
        # The CLI runs its own event loop: give it a thread so this loop keeps serving.
        return await asyncio.to_thread(invoke, push_env, "wecom", "menu", "--push")


def test_menu_prints_the_json_without_pushing(env: dict[str, str]) -> None:
    result = invoke(env, "wecom", "menu")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == wechat_menu.platform_json(wechat_menu.load())


async def test_menu_push_installs_the_menu_on_the_app(env: dict[str, str]) -> None:
    fake = FakeWeCom()

    result = await push_menu(fake, env)

    assert result.exit_code == 0, result.output
    assert "Menu installed." in result.output
    assert fake.menus == [wechat_menu.platform_json(wechat_menu.load())]
    assert fake.calls(MENU_CREATE)[0].query["agentid"] == str(fake.agent_id)


async def test_menu_push_reports_a_refusal(env: dict[str, str]) -> None:
    fake = FakeWeCom()
    fake.fail_next(MENU_CREATE, -1)

    result = await push_menu(fake, env)

    assert result.exit_code == 1
    assert "Menu not installed" in result.output
    assert fake.menus == []


def test_menu_push_without_the_app_is_a_config_error(env: dict[str, str]) -> None:
    result = invoke(env, "wecom", "menu", "--push")

    assert isinstance(result.exception, ConfigError)
    assert "QIYI_WECOM_CORP_ID" in str(result.exception)
