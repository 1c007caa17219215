"""`qiyi wecom`: the WeCom (企业微信) self-built app."""

from __future__ import annotations

import json
from typing import Annotated

import aiohttp
import typer

from bot.channels import wechat_menu, wecom_api
from bot.cli_runtime import err, out, run
from bot.settings import Settings

wecom_app = typer.Typer(help="The WeCom (企业微信) self-built app.", no_args_is_help=True)


@wecom_app.command("menu")
def wecom_menu_command(
    push: Annotated[bool, typer.Option("--push", help="Install it on the app.")] = False,
) -> None:
    """Print the menu (content/menu.toml, the same as WeChat's) as WeCom's JSON; --push
    installs it on the app (QIYI_WECOM_AGENT_ID)."""
    menu = wechat_menu.platform_json(wechat_menu.load())
    print(json.dumps(menu, ensure_ascii=False, indent=2))
    if not push:
        return

    async def work(settings: Settings) -> None:
        settings.require_wecom_api()
        corp, agent, secret = settings.wecom_corp_id, settings.wecom_agent_id, settings.wecom_secret
        assert corp and agent and secret
        base = settings.wecom_api_base
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
            token, _ = await wecom_api.get_token(http, base, corp, secret)
            await wecom_api.create_menu(http, base, token, agent, menu)

    try:
        run(work)
    except (wecom_api.WeComApiError, wecom_api.TransientError) as problem:
        err.print(f"[red]Menu not installed[/red]: {problem}")
        raise typer.Exit(1) from None
    out.print("Menu installed.")
