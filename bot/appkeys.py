"""Typed keys of the objects shared on the aiohttp application."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.conversation import Conversation

if TYPE_CHECKING:
    pass
from bot.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
CONVERSATION = web.AppKey("conversation", Conversation)
QQBOT_API = web.AppKey["QQBotApi"]("qqbot_api")
