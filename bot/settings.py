"""Settings, read once at start from the environment or `.env` (prefix QIYI_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/qiyi.db"
WECHAT_API_BASE = "https://api.weixin.qq.com"


class ConfigError(Exception):
    """A setting is missing or wrong; the message is one line naming it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="QIYI_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = DEFAULT_DATABASE_URL
    wechat_token: str | None = None
    wechat_appid: str | None = None
    wechat_secret: str | None = None
    wechat_aes_key: str | None = None
    wechat_aes_key_previous: str | None = None
    wechat_api_base: str = WECHAT_API_BASE
    timezone: str = "Asia/Shanghai"
    daily_goal_minutes: int = Field(default=120, ge=10, le=1440)
    scheduler: Literal["on", "off"] = "on"
    rules_file: Path | None = None
    replay_window_seconds: int = Field(default=300, ge=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @field_validator("wechat_aes_key", "wechat_aes_key_previous")
    @classmethod
    def _aes_key_shape(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if len(value) != 43:
            raise ValueError("an EncodingAESKey is 43 characters")
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def safe_mode(self) -> bool:
        return self.wechat_aes_key is not None

    def require_wechat(self) -> None:
        """Fail with one line when the webhook cannot run with these settings."""
        if not self.wechat_token:
            raise ConfigError("QIYI_WECHAT_TOKEN is not set: the WeChat webhook needs the Token")
        if self.safe_mode and not self.wechat_appid:
            raise ConfigError(
                "QIYI_WECHAT_APPID is not set: safe mode (QIYI_WECHAT_AES_KEY) needs it"
            )

    def require_wechat_api(self) -> None:
        for name in ("wechat_appid", "wechat_secret"):
            if not getattr(self, name):
                raise ConfigError(f"QIYI_{name.upper()} is not set: the WeChat API needs it")


def load_settings(**overrides: object) -> Settings:
    """Read settings; a bad value becomes a `ConfigError` naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        name = "QIYI_" + str(error["loc"][0]).upper() if error["loc"] else "settings"
        raise ConfigError(f"{name}: {error['msg']}") from None
