"""APScheduler jobs, declared in one place with their times from the settings."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import pushes, report_pushes
from bot.channels.freshness import replay_horizon
from bot.clock import Clock
from bot.material_fetch import MaterialFetcher
from bot.reports.bulletins import Context
from bot.reports.periods import PeriodKind
from bot.rules import load_rules
from bot.settings import Settings
from data import processed, retention, roster_drafts, seen_requests, wecom_quota
from data.db import Sessions, transaction
from data.migrate import refresh_statistics
from data.models import PushKind

log = logging.getLogger(__name__)

MISFIRE_GRACE_SECONDS = 15 * 60
FORGET_PROCESSED_AT = dt.time(3, 40)  # at night, when hardly anybody writes
RETRY_MATERIALS_AT = dt.time(3, 50)
# A failed fetch is retried at night while the platform may still hold the file (WeChat
# keeps a member's media 3 days); older ones only by `qiyi media fetch`.
RETRY_MATERIALS_SENT_WITHIN = dt.timedelta(days=3)

# One batch of a clean-up: delete up to `limit` rows older than the moment; how many.
Forget = Callable[[AsyncSession, dt.datetime, int], Awaitable[int]]


@dataclass(frozen=True)
class PushJobs:
    """The job bodies: each enqueues in one transaction and reports what it did (and the
    nightly clean-up of the tables that would only grow)."""

    settings: Settings
    clock: Clock
    sessions: Sessions
    context: Context | None = None  # default: from the settings and their rules file
    materials: MaterialFetcher | None = None  # the server's; None: no files are fetched

    async def lesson(self) -> pushes.Enqueued:
        return await self._article(PushKind.LESSON)

    async def news(self) -> pushes.Enqueued:
        return await self._article(PushKind.NEWS)

    async def video(self) -> pushes.Enqueued:
        return await self._article(PushKind.VIDEO)

    async def reminders(self) -> pushes.Enqueued:
        async with transaction(self.sessions) as session:
            done = await pushes.enqueue_reminders(session, self.settings, self.clock)
        log.info("reminders enqueued: %d", done.count)
        return done

    async def report(self, kind: PeriodKind) -> pushes.Enqueued:
        engine = self.sessions.kw.get("bind")
        if engine is not None:
            await refresh_statistics(engine)
        async with transaction(self.sessions) as session:
            context = self.context or Context(
                self.settings.zone,
                self.settings.daily_goal_minutes,
                load_rules(self.settings.rules_file),
            )
            done = await report_pushes.enqueue_report(
                session, self.settings, self.clock, context, kind
            )
        log.info("%s report %s enqueued: %d", kind.value, done.subject, done.count)
        return done

    async def month_report(self) -> pushes.Enqueued:
        return await self.report(PeriodKind.MONTH)

    async def quarter_report(self) -> pushes.Enqueued:
        return await self.report(PeriodKind.QUARTER)

    async def year_report(self) -> pushes.Enqueued:
        return await self.report(PeriodKind.YEAR)

    async def forget_processed(self) -> int:
        """Forget the keys and replies of messages older than their retention (`KEEP`, or
        longer than any channel accepts a replay), a batch per transaction so that the
        messages arriving meanwhile wait for one batch at most."""
        before = self.clock.now() - processed.retention(replay_horizon(self.settings))
        forgotten = await self._forget(processed.forget_older, before, processed.PRUNE_BATCH)
        log.info("processed messages forgotten: %d (before %s)", forgotten, before)
        return forgotten

    async def clean_up(self) -> dict[str, int]:
        """The nightly clean-up of the tables that would only grow: processed messages, seen
        WeChat nonces, bind failures, pushes done with their attempts, group posts done and
        notices shown, each older than its setting, expired roster uploads and WeCom sends counted
        two days ago; how many
        rows of each went. Audit rows and pushes not done yet are never touched."""
        now = self.clock.now()
        settings = self.settings
        # A nonce accepted now may carry a timestamp up to one window ahead, which stays
        # fresh one more window: after two, nothing can bring that pair again.
        seen_before = now - 2 * dt.timedelta(seconds=settings.replay_window_seconds)
        delivered_before = now - dt.timedelta(days=settings.keep_delivered_days)
        batch = retention.PRUNE_BATCH
        forgotten = {
            "processed": await self.forget_processed(),
            "seen_requests": await self._forget(seen_requests.forget_older, seen_before, batch),
            "bind_failures": await self._forget(
                retention.forget_bind_failures,
                now - dt.timedelta(days=settings.keep_bind_failures_days),
                batch,
            ),
            "delivered": await self._forget(retention.forget_delivered, delivered_before, batch),
            "group_posts": await self._forget(retention.forget_posted, delivered_before, batch),
            "shown_notices": await self._forget(
                retention.forget_shown_notices,
                now - dt.timedelta(days=settings.keep_mailbox_days),
                batch,
            ),
            "roster_drafts": await self._forget(
                retention.forget_roster_drafts, now - roster_drafts.LIFETIME, batch
            ),
            "wecom_sends": await self._forget(
                retention.forget_wecom_sends, now - wecom_quota.KEEP, batch
            ),
        }
        log.info("nightly clean-up: %s", forgotten)
        return forgotten

    async def fetch_materials(self) -> int:
        """Fetch the materials' files that are due; how many were settled."""
        if self.materials is None:
            return 0
        done = await self.materials.run_once()
        if done:
            log.info("materials fetched: %s", dict(done))
        return done.total()

    async def retry_materials(self) -> int:
        """The nightly second chance of the recent failed fetches, fetched now."""
        if self.materials is None:
            return 0
        since = self.clock.now() - RETRY_MATERIALS_SENT_WITHIN
        again = await self.materials.retry_failed(since)
        log.info("failed material fetches retried: %d", again)
        await self.fetch_materials()
        return again

    async def _forget(self, forget: Forget, before: dt.datetime, batch: int) -> int:
        """Run `forget` a batch per transaction until a batch comes back short."""
        forgotten = 0
        while True:
            async with transaction(self.sessions) as session:
                done = await forget(session, before, batch)
            forgotten += done
            if done < batch:
                return forgotten

    async def _article(self, kind: PushKind) -> pushes.Enqueued:
        async with transaction(self.sessions) as session:
            done = await pushes.enqueue_article(session, self.settings, self.clock, kind)
        log.info("%s push enqueued: %d (%s)", kind.value, done.count, done.subject or "nothing new")
        return done


def clean_up_summary(settings: Settings) -> str:
    """What the nightly clean-up forgets, as `qiyi jobs list` shows it."""
    kept = processed.retention(replay_horizon(settings))
    return (
        f"clean-up: forget processed messages after {kept.days} days, bind failures after"
        f" {settings.keep_bind_failures_days}, pushes done and their attempts after"
        f" {settings.keep_delivered_days}, notices shown after {settings.keep_mailbox_days},"
        " WeChat nonces after the replay window"
    )


def triggers(settings: Settings) -> dict[str, tuple[str, BaseTrigger]]:
    """Job id -> (what it does, when). Reminders: a sweep that reaches each member at their
    own reminder time (the default one included), to the sweep's granularity."""
    zone = settings.zone

    def daily(at: dt.time) -> CronTrigger:
        return CronTrigger(hour=at.hour, minute=at.minute, timezone=zone)

    sweep = settings.reminder_sweep_minutes
    at = settings.report_time.replace(minute=min(settings.report_time.minute, 49))
    return {
        "lesson": ("push the new micro-lesson", daily(settings.lesson_time)),
        "news": ("push the new micro-news", daily(settings.news_time)),
        "video": ("push the new micro-video", daily(settings.video_time)),
        "reminders": (
            f"remind members below the goal (every {sweep} min)",
            CronTrigger(minute=f"*/{sweep}", timezone=zone),
        ),
        "month_report": (
            "score last month's branches (on the 1st)",
            CronTrigger(day=1, hour=at.hour, minute=at.minute, timezone=zone),
        ),
        "quarter_report": (
            "the quarterly bulletin (on a quarter's first day)",
            CronTrigger(month="1,4,7,10", day=1, hour=at.hour, minute=at.minute + 5, timezone=zone),
        ),
        "year_report": (
            "the year-end summary (on 1 January)",
            CronTrigger(month=1, day=1, hour=at.hour, minute=at.minute + 10, timezone=zone),
        ),
        "forget_processed": (clean_up_summary(settings), daily(FORGET_PROCESSED_AT)),
        "fetch_materials": (
            "fetch the materials' files sent (every minute)",
            CronTrigger(minute="*", timezone=zone),
        ),
        "retry_materials": (
            "retry the failed fetches of the last 3 days' materials",
            daily(RETRY_MATERIALS_AT),
        ),
    }


def build_scheduler(settings: Settings, jobs: PushJobs) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(
        timezone=settings.zone,
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": MISFIRE_GRACE_SECONDS,
        },
    )
    bodies = {
        "lesson": jobs.lesson,
        "news": jobs.news,
        "video": jobs.video,
        "reminders": jobs.reminders,
        "month_report": jobs.month_report,
        "quarter_report": jobs.quarter_report,
        "year_report": jobs.year_report,
        "forget_processed": jobs.clean_up,  # the id it always had; it now does more
        "fetch_materials": jobs.fetch_materials,
        "retry_materials": jobs.retry_materials,
    }
    for job_id, (name, trigger) in triggers(settings).items():
        scheduler.add_job(bodies[job_id], trigger, id=job_id, name=name, replace_existing=True)
    return scheduler


def next_runs(settings: Settings, now: dt.datetime) -> list[tuple[str, str, dt.datetime | None]]:
    """(job id, what it does, next run) as of `now`, without starting anything."""
    return [
        (job_id, name, trigger.get_next_fire_time(None, now))
        for job_id, (name, trigger) in triggers(settings).items()
    ]
