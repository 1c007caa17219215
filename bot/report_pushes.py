"""月打分、季通报、年终结 pushed: the period that just ended, to admins and secretaries (with
their own branch's line) and to the branches' QQ groups."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock, today
from bot.pushes import Enqueued, due_time
from bot.reports.bulletins import (
    Context,
    MonthReport,
    QuarterReport,
    YearReport,
    month_report,
    quarter_report,
    year_report,
)
from bot.reports.chart import write_png
from bot.reports.periods import PeriodKind, ReportPeriod, just_ended
from bot.reports.scoring import BranchScore
from bot.settings import Settings
from content.texts import render
from data import audience, groups, outbox
from data.models import PushKind, Role
from data.outbox import Push

Report = MonthReport | QuarterReport | YearReport


async def build(session: AsyncSession, period: ReportPeriod, context: Context) -> Report:
    if period.kind is PeriodKind.MONTH:
        return await month_report(session, period, context)
    if period.kind is PeriodKind.QUARTER:
        return await quarter_report(session, period, context)
    return await year_report(session, period, context)


def _own_line(report: Report, branch_id: int) -> BranchScore | None:
    """The secretary's own branch in the ranking, if it is there."""
    if isinstance(report, MonthReport):
        return next((b for b in report.branches if b.branch_id == branch_id), None)
    return None


def chart_file(settings: Settings, report: Report) -> str:
    """The ranking chart as a PNG under QIYI_REPORTS_DIR, for the channels that show pictures."""
    path = settings.reports_dir / f"{report.period.label}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(report, path)
    return str(path.resolve())


async def enqueue_report(
    session: AsyncSession, settings: Settings, clock: Clock, context: Context, kind: PeriodKind
) -> Enqueued:
    """Compute the period that just ended and push its summary."""
    now, day = clock.now(), today(clock)
    period = just_ended(kind, day)
    report = await build(session, period, context)
    image = chart_file(settings, report)
    due = due_time(settings, now)
    ref = f"report:{period.label}"
    pushes = []
    for member_id, branch_id, role in await audience.staff(session):
        own = _own_line(report, branch_id) if role == Role.SECRETARY.value else None
        text = render("push_report", report=report, kind=kind.value, own=own)
        brief = render("push_brief", kind="report", title=period.label)
        pushes.append(Push(member_id, PushKind.REPORT, ref, day, text, brief, due, image))
    count = await outbox.enqueue(session, pushes, now)
    if settings.onebot_api_url:
        text = render("push_report", report=report, kind=kind.value, own=None)
        posts = [
            groups.Post(group.channel, group.group_id, "report", ref, day, text, due, image)
            for group in await groups.on_channel(session, "qq")
        ]
        await groups.enqueue(session, posts, now)
    return Enqueued(PushKind.REPORT, count, period.label)
