"""`qiyi month`: close a month (关账: its figures frozen, its reports final) or reopen it."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from bot import grading
from bot.cli_runtime import cli_actor, database, err, out, run
from bot.clock import SystemClock, today
from bot.reports.bulletins import Context
from bot.reports.periods import PeriodKind, ReportPeriod, parse_period
from bot.rules import load_rules
from bot.settings import Settings
from data.db import session_factory, transaction

month_app = typer.Typer(help="Close a month (关账) or reopen it.", no_args_is_help=True)

REFUSALS = {
    grading.Reason.NOT_ENDED: "{month} has not ended yet: a month is closed after its last day.",
    grading.Reason.ALREADY_CLOSED: "{month} is closed already.",
    grading.Reason.NOT_CLOSED: "{month} is not closed.",
    grading.Reason.NO_REASON: "Give the reason for reopening with --reason.",
    grading.Reason.REASON_TOO_LONG: f"The reason is too long (at most {grading.MAX_REASON}).",
}


def _month(text: str) -> ReportPeriod:
    try:
        period = parse_period(text)
    except ValueError:
        period = None
    if period is None or period.kind is not PeriodKind.MONTH:
        err.print(f"[red]{escape(repr(text))} is not a month (write 2026-10)[/red]")
        raise typer.Exit(1)
    return period


def _refused(problem: grading.Refused, period: ReportPeriod) -> typer.Exit:
    err.print(f"[red]{escape(REFUSALS[problem.reason].format(month=period.label))}[/red]")
    return typer.Exit(1)


@month_app.command("close")
def close(month: Annotated[str, typer.Argument(help="The month, e.g. 2026-10.")]) -> None:
    """Close an ended month: its scores, parts and ranks are frozen; its reports are final
    and the quarter and year use them; its grades can no longer change (audited)."""
    period = _month(month)

    async def work(settings: Settings) -> None:
        clock = SystemClock(settings.zone)
        context = Context(
            settings.zone, settings.daily_goal_minutes, load_rules(settings.rules_file)
        )
        async with database(settings) as engine, transaction(session_factory(engine)) as session:
            await grading.close_month(
                session, cli_actor(), period, context, today=today(clock), at=clock.now()
            )

    try:
        run(work)
    except grading.Refused as problem:
        raise _refused(problem, period) from None
    out.print(f"{period.label} closed: its figures are frozen.", highlight=False)


@month_app.command("reopen")
def reopen(
    month: Annotated[str, typer.Argument(help="The month, e.g. 2026-10.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is reopened (required).")],
) -> None:
    """Reopen a closed month: its frozen figures are dropped and computed anew (audited)."""
    period = _month(month)

    async def work(settings: Settings) -> None:
        now = SystemClock(settings.zone).now()
        async with database(settings) as engine, transaction(session_factory(engine)) as session:
            await grading.reopen_month(session, cli_actor(), period, reason, now)

    try:
        run(work)
    except grading.Refused as problem:
        raise _refused(problem, period) from None
    out.print(f"{period.label} reopened: its figures are computed anew.", highlight=False)
