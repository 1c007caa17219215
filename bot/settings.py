"""Settings, read once at start from the environment or `.env` (prefix QIYI_)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.ladder import DEFAULT_ORDER, Rung, parse_order
from data.db import async_url
from data.media import s3
from data.media.kinds import Limits

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/qiyi.db"
WECHAT_API_BASE = "https://api.weixin.qq.com"
WECOM_API_BASE = "https://qyapi.weixin.qq.com"
# The push kinds a WeChat template message may be set for (QIYI_WECHAT_TEMPLATE_<KIND>).
TEMPLATE_KINDS = ("reminder", "lesson", "news", "video", "notice", "review", "report")


class ConfigError(Exception):
    """A setting is missing or wrong; the message is one line naming it."""


@dataclass(frozen=True)
class QuietHours:
    """A daily span when nothing is pushed; it may wrap past midnight (22:00-07:00)."""

    start: dt.time
    end: dt.time

    def contains(self, moment: dt.time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def next_end(self, now: dt.datetime) -> dt.datetime:
        """The first moment at or after `now` (aware) outside the quiet span."""
        if not self.contains(now.timetz().replace(tzinfo=None)):
            return now
        end = now.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        return end if end > now else end + dt.timedelta(days=1)


def parse_quiet_hours(value: str) -> QuietHours | None:
    """ "22:00-07:00" -> QuietHours; "" -> None (no quiet hours)."""
    if not value.strip():
        return None
    try:
        start, end = (dt.time.fromisoformat(part.strip()) for part in value.split("-"))
    except ValueError:
        raise ValueError("quiet hours are written HH:MM-HH:MM, e.g. 22:00-07:00") from None
    if start == end:
        raise ValueError("quiet hours need a start and an end that differ")
    return QuietHours(start, end)


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
    access_log: bool = False  # one line per HTTP request; the reverse proxy keeps one anyway
    rules_file: Path | None = None
    replay_window_seconds: int = Field(default=300, ge=1)
    lesson_time: dt.time = dt.time(7, 30)
    news_time: dt.time = dt.time(12, 0)
    video_time: dt.time = dt.time(19, 0)  # an evening at home suits a video
    reminder_time: dt.time = dt.time(20, 30)
    reminder_sweep_minutes: int = Field(default=5, ge=1, le=60)
    quiet_hours: str = "22:00-07:00"
    # Activities: sign-in opens this long before the start (and closes at the end); the
    # expected members are reminded this long before the start.
    activity_sign_in_minutes: int = Field(default=30, ge=0, le=24 * 60)
    activity_reminder_minutes: int = Field(default=60, ge=0, le=7 * 24 * 60)
    delivery_concurrency: int = Field(default=8, ge=1, le=500)
    delivery_rate: float = Field(default=20.0, gt=0)
    delivery_max_attempts: int = Field(default=5, ge=1, le=50)
    delivery_backoff_seconds: float = Field(default=30.0, gt=0)
    delivery_lease_seconds: int = Field(default=120, ge=5)
    wechat_template_reminder: str | None = None
    wechat_template_lesson: str | None = None
    wechat_template_news: str | None = None
    wechat_template_video: str | None = None
    wechat_template_notice: str | None = None
    wechat_template_review: str | None = None
    wechat_template_report: str | None = None
    report_time: dt.time = dt.time(8, 0)
    reports_dir: Path = Path("var/reports")
    onebot_secret: str | None = None
    onebot_api_url: str | None = None
    onebot_access_token: str | None = None
    onebot_group_commands: bool = True
    onebot_send_interval_seconds: float = Field(default=1.5, ge=0)
    qqbot_appid: str | None = None
    qqbot_secret: str | None = None
    qqbot_api_base: str = "https://api.sgroup.qq.com"
    qqbot_token_url: str = "https://bots.qq.com/app/getAppAccessToken"
    # WeCom (企业微信): a self-built app's callback (`/wecom`) and API.
    wecom_corp_id: str | None = None
    wecom_agent_id: int | None = None
    wecom_secret: str | None = None
    wecom_token: str | None = None
    wecom_aes_key: str | None = None
    wecom_api_base: str = WECOM_API_BASE
    # A WeCom UserId equal to a roster 工号 binds on its first message: the enterprise
    # assigns UserIds, so it vouches for who is behind one (members only, never staff).
    wecom_autobind: bool = False
    # WeCom's limits on app messages (the excess is dropped without an error, so the
    # dispatcher counts what it sent): per member 30 a minute and 1,000 an hour, and the
    # app's person-times a day — the corp's 账号上限 × 200 (40,000: an account cap of 200).
    wecom_member_per_minute: int = Field(default=30, ge=1, le=30)
    wecom_member_per_hour: int = Field(default=1000, ge=1, le=1000)
    wecom_daily_cap: int = Field(default=40_000, ge=1)
    # WeCom app messages sent a second: apart from QIYI_DELIVERY_RATE, which paces WeChat.
    # (WeCom does not count message sends in its per-API call frequency; its limits on them
    # are the ones above.)
    wecom_delivery_rate: float = Field(default=200.0, gt=0, le=1000)
    # The delivery ladder (bot/ladder.py): the rungs a push tries, best first; the mailbox
    # is always last.
    delivery_order: str = DEFAULT_ORDER
    # The console's public address (https://party.example.org): sign-in links and the
    # cookie's Secure flag come from it; without it links use the request's host.
    public_url: str | None = None
    # How a member proves who they are when binding (README: "Binding"): a one-time code
    # the office issued, the last 4 digits of the phone in the roster, or the name alone
    # (trusted small groups only; never enough for a secretary or an admin).
    bind_proof: Literal["code", "phone4", "name"] = "code"
    # With an AES key set, plain (unencrypted) WeChat requests are refused unless the account
    # runs in compatibility mode (兼容模式) and this says so.
    wechat_compat: bool = False
    # /onebot without QIYI_ONEBOT_SECRET: only for an implementation on the same machine.
    onebot_allow_unsigned: bool = False
    # OneBot events older than this (their `time`) are refused: less than the dedupe keys
    # are kept (data.processed.KEEP), so a captured event cannot count twice.
    onebot_max_event_age_seconds: int = Field(default=24 * 3600, ge=60, le=6 * 24 * 3600)
    # The nightly clean-up: how long rows that only grow are kept (audit rows: for ever).
    keep_bind_failures_days: int = Field(default=30, ge=1)
    keep_delivered_days: int = Field(default=90, ge=7)  # outbox rows done, their attempts
    keep_mailbox_days: int = Field(default=90, ge=7)  # notices already shown
    # `排行` and `我的月报` read the month's standings computed at most this long ago
    # (bot/reports/standings.py): the whole organisation's month is not scored per message.
    standings_max_age_seconds: int = Field(default=300, ge=10, le=3600)
    # Materials' files (资料) kept for good: in a directory, or in S3-compatible storage
    # (s3://KEY:SECRET@host:port/bucket?region=…&secure=false) when several machines serve.
    media_dir: Path = Path("var/media")
    media_s3_url: str | None = None
    media_max_image_mb: int = Field(default=10, ge=1, le=1024)
    media_max_video_mb: int = Field(default=50, ge=1, le=1024)
    media_max_file_mb: int = Field(default=20, ge=1, le=1024)
    media_fetch_max_attempts: int = Field(default=6, ge=1, le=50)
    media_fetch_backoff_seconds: float = Field(default=60.0, gt=0)
    media_fetch_timeout_seconds: float = Field(default=120.0, gt=0)
    # QQ pictures and files are fetched by the URL the message carries: from public addresses
    # only, unless the OneBot implementation serves them on the local network.
    media_fetch_private_ok: bool = False
    # Uploaded in the content editor: a cover picture, and a 微视频's MP4 (WeChat takes
    # temporary video media up to 10 MB).
    content_cover_max_mb: int = Field(default=2, ge=1, le=100)
    content_video_max_mb: int = Field(default=10, ge=1, le=1024)
    # How long a media id WeChat gave for an upload is reused (the platform keeps it 3 days).
    upload_reuse_hours: float = Field(default=60.0, gt=0, le=70)

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        return async_url(value)

    @field_validator("media_s3_url")
    @classmethod
    def _s3_url_shape(cls, value: str | None) -> str | None:
        if not value:
            return None
        s3.parse_url(value)  # S3UrlError is a ValueError: reported without the URL
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours_shape(cls, value: str) -> str:
        parse_quiet_hours(value)
        return value

    @field_validator("delivery_order")
    @classmethod
    def _delivery_order_shape(cls, value: str) -> str:
        parse_order(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @field_validator("wechat_aes_key", "wechat_aes_key_previous", "wecom_aes_key")
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
    def media_limits(self) -> Limits:
        mb = 1024 * 1024
        return Limits(
            self.media_max_image_mb * mb, self.media_max_video_mb * mb, self.media_max_file_mb * mb
        )

    @property
    def quiet(self) -> QuietHours | None:
        return parse_quiet_hours(self.quiet_hours)

    @property
    def ladder(self) -> tuple[Rung, ...]:
        return parse_order(self.delivery_order)

    @property
    def any_template(self) -> bool:
        return any(self.template_for(kind) for kind in TEMPLATE_KINDS)

    @property
    def wecom_api_ready(self) -> bool:
        """The app's API can be called: pushes may go through WeCom."""
        return bool(self.wecom_corp_id and self.wecom_agent_id and self.wecom_secret)

    def template_for(self, kind: str) -> str | None:
        """The template message id configured for a push kind, if any."""
        return getattr(self, f"wechat_template_{kind}", None) or None

    @property
    def safe_mode(self) -> bool:
        return self.wechat_aes_key is not None

    @property
    def onebot_enabled(self) -> bool:
        return bool(self.onebot_secret or self.onebot_api_url)

    @property
    def qqbot_enabled(self) -> bool:
        return bool(self.qqbot_appid and self.qqbot_secret)

    @property
    def wecom_enabled(self) -> bool:
        return bool(self.wecom_corp_id or self.wecom_token or self.wecom_aes_key)

    def require_a_channel(self) -> None:
        """The server needs at least one channel; WeChat and WeCom, when configured, completely."""
        self.require_onebot()
        if self.wecom_enabled:
            self.require_wecom()
        if self.wechat_token or self.wechat_aes_key:
            self.require_wechat()
        elif not (self.onebot_enabled or self.qqbot_enabled or self.wecom_enabled):
            raise ConfigError(
                "QIYI_WECHAT_TOKEN is not set: the WeChat webhook needs the Token"
                " (or configure QQ: QIYI_ONEBOT_SECRET / QIYI_QQBOT_APPID,"
                " or WeCom: QIYI_WECOM_CORP_ID)"
            )

    def require_wecom(self) -> None:
        """`/wecom` needs the CorpID (the ReceiveId), the Token and the EncodingAESKey: WeCom
        callbacks are always encrypted."""
        for name in ("wecom_corp_id", "wecom_token", "wecom_aes_key"):
            if not getattr(self, name):
                raise ConfigError(f"QIYI_{name.upper()} is not set: the WeCom callback needs it")

    def require_wecom_api(self) -> None:
        for name in ("wecom_corp_id", "wecom_agent_id", "wecom_secret"):
            if not getattr(self, name):
                raise ConfigError(f"QIYI_{name.upper()} is not set: the WeCom API needs it")

    def require_onebot(self) -> None:
        """/onebot takes unsigned events only when the operator says so (loopback only)."""
        if self.onebot_enabled and not self.onebot_secret and not self.onebot_allow_unsigned:
            raise ConfigError(
                "QIYI_ONEBOT_SECRET is not set: /onebot would accept unsigned events"
                " (QIYI_ONEBOT_ALLOW_UNSIGNED=true only for an implementation on loopback)"
            )

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
        problem = str(error["msg"]).removeprefix("Value error, ")  # pydantic's prefix
        raise ConfigError(f"{name}: {problem}") from None
