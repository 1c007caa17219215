"""`qiyi push`, `qiyi jobs`, `qiyi outbox`: the scheduler's work by hand, and repairs."""

from __future__ import annotations

import json
from collections import Counter
from enum import StrEnum
from typing import Annotated

import aiohttp
import typer
from rich.progress import Progress
from rich.table import Table
from rich.text import Text
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import push_reasons, push_retries, pushes, report_pushes
from bot.app import wechat_api_for, wecom_api_for
from bot.channels.onebot_api import OneBotApi
from bot.cli_runtime import cli_actor, database, out, run
from bot.clock import Clock, SystemClock
from bot.dispatcher import Dispatcher
from bot.reports.bulletins import Context
from bot.reports.periods import PeriodKind
from bot.rules import load_rules
from bot.settings import Settings, load_settings
from data import outbox, outbox_listing
from data.db import Sessions, session_factory, transaction
from data.media.store import open_store
from data.models import OutboxState, PushKind
from scheduler.jobs import next_runs

jobs_app = typer.Typer(help="The scheduled jobs.", no_args_is_help=True)
outbox_app = typer.Typer(help="The outbox of pushes.", no_args_is_help=True)

OUTCOMES = ("sent", "fallback", "mailbox", "failed", "skipped", "retry")


class PushChoice(StrEnum):
    LESSON = "lesson"
    NEWS = "news"
    VIDEO = "video"
    REMINDER = "reminder"
    MONTH_REPORT = "month-report"
    QUARTER_REPORT = "quarter-report"
    YEAR_REPORT = "year-report"


REPORTS = {
    PushChoice.MONTH_REPORT: PeriodKind.MONTH,
    PushChoice.QUARTER_REPORT: PeriodKind.QUARTER,
    PushChoice.YEAR_REPORT: PeriodKind.YEAR,
}


async def _enqueue(
    choice: PushChoice, session: AsyncSession, settings: Settings, clock: Clock
) -> pushes.Enqueued:
    if choice is PushChoice.REMINDER:
        return await pushes.enqueue_reminders(session, settings, clock)
    if choice in REPORTS:
        context = Context(
            settings.zone, settings.daily_goal_minutes, load_rules(settings.rules_file)
        )
        return await report_pushes.enqueue_report(
            session, settings, clock, context, REPORTS[choice]
        )
    return await pushes.enqueue_article(session, settings, clock, PushKind(choice.value))


async def dispatch_now(settings: Settings, clock: Clock, sessions: Sessions) -> Counter[str]:
    """Send what is due, with a progress bar; the same dispatcher as the server's."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        api = wechat_api_for(settings, http, sessions, clock)
        onebot = OneBotApi(http, settings) if settings.onebot_api_url else None
        wecom = wecom_api_for(settings, http, sessions, clock)
        store = open_store(settings.media_dir, settings.media_s3_url)
        dispatcher = Dispatcher(
            settings, clock, sessions, api, onebot=onebot, wecom=wecom, store=store
        )
        async with sessions() as session:
            counts = await outbox.counts(session)
        due = counts.get("pending", 0) + counts.get("sending", 0)
        with Progress(console=out, transient=True, disable=due < 100) as progress:
            task = progress.add_task("sending", total=due)
            return await dispatcher.run_once(lambda n: progress.advance(task, n))


def push(
    kind: Annotated[PushChoice, typer.Argument(help="What to push.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count, change nothing.")] = False,
) -> None:
    """Enqueue a push (lesson, news, video, reminder, last period's report); send what is due."""

    async def work(settings: Settings) -> tuple[pushes.Enqueued, list[str], Counter[str]]:
        clock = SystemClock(settings.zone)
        async with database(settings) as engine:
            sessions = session_factory(engine)
            if dry_run:
                async with sessions() as session:
                    trial = await session.begin()
                    enqueued = await _enqueue(kind, session, settings, clock)
                    reasons = await push_reasons.explain(session, settings, clock, enqueued)
                    await trial.rollback()
                return enqueued, reasons, Counter()
            async with transaction(sessions) as session:
                enqueued = await _enqueue(kind, session, settings, clock)
                reasons = await push_reasons.explain(session, settings, clock, enqueued)
            return enqueued, reasons, await dispatch_now(settings, clock, sessions)

    enqueued, reasons, outcome = run(work)
    subject = f" ({enqueued.subject})" if enqueued.subject else ""
    verb = "would enqueue" if dry_run else "enqueued"
    out.print(f"{kind.value}{subject}: {verb} {enqueued.count}", markup=False)
    for reason in reasons:
        out.print(f"  {reason}", markup=False, highlight=False)
    if not dry_run:
        table = Table(*OUTCOMES)
        table.add_row(*(str(outcome.get(name, 0)) for name in OUTCOMES))
        out.print(table)


@jobs_app.command("list")
def jobs_list() -> None:
    """The scheduled jobs and when each runs next."""
    settings = load_settings()
    now = SystemClock(settings.zone).now()
    table = Table("job", "what", "next run")
    for job_id, name, at in next_runs(settings, now):
        table.add_row(job_id, name, at.strftime("%Y-%m-%d %H:%M %Z") if at else "-")
    out.print(table)
    if settings.scheduler == "off":
        out.print("QIYI_SCHEDULER=off: the server runs none of them.")


@outbox_app.command("list")
def outbox_list(
    state: Annotated[OutboxState | None, typer.Option(help="Only this state.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Pushes in the outbox, with their state and last error."""

    async def work(settings: Settings) -> tuple[dict[str, int], list[dict[str, object]]]:
        async with database(settings) as engine, session_factory(engine)() as session:
            rows = await outbox_listing.with_members(session, state, limit)
            listing = [
                {
                    "id": row.id,
                    "member": row.member_id,  # the internal id, as the database has it
                    "member_id": roster_id,  # the roster's 工号, as people know the member
                    "name": name,
                    "kind": row.kind,
                    "state": row.state,
                    "attempts": row.attempts,
                    "due_at": row.due_at.astimezone(settings.zone).strftime("%Y-%m-%d %H:%M"),
                    "error": row.last_error,
                }
                for row, roster_id, name in rows
            ]
            return await outbox.counts(session), listing

    counts, listing = run(work)
    if as_json:
        print(json.dumps({"counts": counts, "items": listing}, ensure_ascii=False, indent=2))
        return
    out.print(
        ", ".join(f"{name}: {n}" for name, n in sorted(counts.items())) or "The outbox is empty."
    )
    columns = ("id", "member_id", "name", "kind", "state", "attempts", "due_at", "error")
    table = Table("id", "member_id")
    table.add_column("name", overflow="fold")  # a narrow terminal wraps a name, never cuts it
    for header in ("kind", "state", "attempts", "due", "last error"):
        table.add_column(header)
    for row in listing:
        table.add_row(*(Text(str(row[k])) for k in columns))  # names and errors: no markup
    out.print(table)


@outbox_app.command("retry")
def outbox_retry(
    item: Annotated[int | None, typer.Option("--id", help="Only this item.")] = None,
) -> None:
    """Failed pushes back to pending, then send what is due."""

    async def work(settings: Settings) -> tuple[int, Counter[str]]:
        clock = SystemClock(settings.zone)
        async with database(settings) as engine:
            sessions = session_factory(engine)
            async with transaction(sessions) as session:
                ids = None if item is None else [item]
                again = await push_retries.retry(session, cli_actor(), ids, clock.now())
            return again, await dispatch_now(settings, clock, sessions)

    again, outcome = run(work)
    out.print(f"{again} failed pushes queued again.")
    table = Table(*OUTCOMES)
    table.add_row(*(str(outcome.get(name, 0)) for name in OUTCOMES))
    out.print(table)
