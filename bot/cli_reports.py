"""`qiyi report`: the month's branch scores, the quarter's bulletin, the year's summary."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from bot.cli_runtime import database, err, out, run
from bot.clock import SystemClock, today
from bot.reports.activity_sheets import month_activities, render_activities
from bot.reports.bulletins import (
    Context,
    in_progress,
    month_documents,
    quarter_report,
    year_report,
)
from bot.reports.chart import write_png
from bot.reports.documents import Report, heading, render_html, render_markdown
from bot.reports.periods import PeriodKind, ReportPeriod, parse_period
from bot.reports.spreadsheet import write_xlsx
from bot.rules import load_rules
from bot.settings import Settings
from data.db import session_factory

report_app = typer.Typer(
    help="Branch scores (month), bulletins (quarter), the year-end summary.",
    no_args_is_help=True,
)

FORMATS = ("md", "html", "xlsx", "png")
DEFAULT_FORMATS = ("md", "xlsx", "png")
DEFAULT_FOLDER = Path("reports")
EXAMPLES = {PeriodKind.MONTH: "2026-10", PeriodKind.QUARTER: "2026Q3", PeriodKind.YEAR: "2026"}
BUILDERS = {
    PeriodKind.MONTH: month_documents,
    PeriodKind.QUARTER: quarter_report,
    PeriodKind.YEAR: year_report,
}

FormatOption = Annotated[
    list[str] | None,
    typer.Option(
        "--format",
        "-f",
        help="md, html, xlsx or png; repeat it or separate with commas [default: md,xlsx,png].",
        show_default=False,
    ),
]
OutOption = Annotated[
    Path,
    typer.Option(
        "--out",
        help="A file (m.xlsx: its extension is the format) or, without an extension, the"
        " folder to write the files into.",
    ),
]


def _write_text(text: str, path: Path) -> None:
    path.write_text(text + "\n", encoding="utf-8")


WRITERS: dict[str, Callable[[Report, Path], None]] = {
    "md": lambda report, path: _write_text(render_markdown(report), path),
    "html": lambda report, path: _write_text(render_html(report), path),
    "xlsx": write_xlsx,
    "png": write_png,
}


def parse_formats(given: list[str] | None) -> list[str]:
    """["md,png", "html"] -> ["md", "png", "html"]; ValueError on an unknown format."""
    if not given:
        return list(DEFAULT_FORMATS)
    found: list[str] = []
    for item in given:
        for name in item.split(","):
            name = name.strip().lower()
            if name not in FORMATS:
                raise ValueError(f"unknown format {name!r} (use {', '.join(FORMATS)})")
            if name not in found:
                found.append(name)
    return found


def targets(given: list[str] | None, target: Path, label: str) -> list[tuple[str, Path]]:
    """(format, path) of each file to write. `target` with an extension is the one file to
    write (`m.xlsx`: the workbook, named so); without one (or an existing folder), the folder
    to write `<label>.<format>` files into. ValueError when they do not fit together."""
    suffix = target.suffix.lower().lstrip(".")
    if target.is_dir() or not suffix:
        return [(name, target / f"{label}.{name}") for name in parse_formats(given)]
    if suffix not in FORMATS:
        raise ValueError(
            f"--out {target}: {suffix!r} is not a format ({', '.join(FORMATS)});"
            " a path without an extension is a folder"
        )
    formats = parse_formats(given) if given else [suffix]
    if formats != [suffix]:
        raise ValueError(
            f"--out {target} is one {suffix} file, but the formats asked are {','.join(formats)}:"
            " give a folder (a path without an extension) for several files"
        )
    return [(suffix, target)]


def write_files(report: Report, files: list[tuple[str, Path]]) -> list[Path]:
    """Write the report in each format to its path (folders made as needed)."""
    for name, path in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        WRITERS[name](report, path)
    return [path for _, path in files]


def _period(kind: PeriodKind, text: str) -> ReportPeriod:
    """The period of the command's kind; ValueError naming the expected shape otherwise."""
    period = parse_period(text)
    if period.kind is not kind:
        raise ValueError(f"{text!r} is a {period.kind}, not a {kind} (write {EXAMPLES[kind]})")
    return period


def _fail(problem: str) -> typer.Exit:
    err.print(f"[red]{escape(problem)}[/red]", highlight=False)
    return typer.Exit(1)


def _report(kind: PeriodKind, text: str, given: list[str] | None, target: Path) -> None:
    try:
        period = _period(kind, text)
        files = targets(given, target, period.label)
    except ValueError as problem:
        raise _fail(str(problem)) from None
    build: Callable[..., Awaitable[Report]] = BUILDERS[kind]

    async def work(settings: Settings) -> Report:
        context = Context(
            settings.zone, settings.daily_goal_minutes, load_rules(settings.rules_file)
        )
        # A period in progress is cut at today, as `排行` is, and says so (截至今日).
        until = in_progress(period, today(SystemClock(settings.zone)))
        async with database(settings) as engine, session_factory(engine)() as session:
            return await build(session, period, context, until)

    report = run(work)
    out.print(heading(report), markup=False, highlight=False)
    for path in write_files(report, files):
        out.print(str(path), markup=False, highlight=False)


@report_app.command("month")
def month(
    period: Annotated[str, typer.Argument(help="The month, e.g. 2026-10.")],
    formats: FormatOption = None,
    target: OutOption = DEFAULT_FOLDER,
) -> None:
    """The month's branch scores with each part of the score (月打分)."""
    _report(PeriodKind.MONTH, period, formats, target)


@report_app.command("quarter")
def quarter(
    period: Annotated[str, typer.Argument(help="The quarter, e.g. 2026Q3.")],
    formats: FormatOption = None,
    target: OutOption = DEFAULT_FOLDER,
) -> None:
    """The quarter's bulletin: branches ranked, their move since last quarter (季通报)."""
    _report(PeriodKind.QUARTER, period, formats, target)


@report_app.command("year")
def year(
    period: Annotated[str, typer.Argument(help="The year, e.g. 2026.")],
    formats: FormatOption = None,
    target: OutOption = DEFAULT_FOLDER,
) -> None:
    """The year-end summary: totals, top members and branches, month by month (年终结)."""
    _report(PeriodKind.YEAR, period, formats, target)


@report_app.command("activities")
def activities(
    period: Annotated[str, typer.Argument(help="The month, e.g. 2026-12.")],
    target: OutOption = DEFAULT_FOLDER,
) -> None:
    """The month's activities: an attendance sheet each (expected, present, on leave, absent,
    by name) and the branches' 组织生活 (Markdown)."""
    try:
        month = _period(PeriodKind.MONTH, period)
    except ValueError as problem:
        raise _fail(str(problem)) from None
    path = target if target.suffix else target / f"{month.label}-activities.md"

    async def work(settings: Settings) -> str:
        async with database(settings) as engine, session_factory(engine)() as session:
            found = await month_activities(session, month, settings.zone)
        return render_activities(found, settings.zone)

    text = run(work)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_text(text, path)
    out.print(str(path), markup=False, highlight=False)
