"""Typed keys of the objects shared on the aiohttp application."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.conversation import Conversation
from bot.settings import Settings
from data.db import Sessions
from data.media.store import MediaStore

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", Sessions)  # on ENGINE: reports, jobs, the console
CONVERSATION = web.AppKey("conversation", Conversation)
QQBOT_API = web.AppKey["QQBotApi"]("qqbot_api")
MEDIA_STORE = web.AppKey("media_store", MediaStore)  # materials' files (data/media)
