"""The branch ranking as a PNG bar chart, sized to be read on a phone.

Drawn with matplotlib's object API on an Agg canvas: no pyplot state, no display needed.
Chinese branch names need a CJK font; on Debian/Ubuntu install `fonts-wqy-microhei`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from functools import cache
from pathlib import Path

import matplotlib
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bot.reports.documents import Report, heading, pending_note, score_label
from content.texts import render

log = logging.getLogger(__name__)

CJK_FONTS = (
    "WenQuanYi Micro Hei",
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "SimHei",
    "Microsoft YaHei",
)
WIDTH_PX = 1080
DPI = 200  # 1080 px = 5.4 in; text in points then stays legible on a phone
HEADER_IN = 1.0  # title and axis
BAR_IN = 0.34  # per branch
MIN_HEIGHT_IN = 2.2
TOP_COLOR, BAR_COLOR = "#b71c1c", "#e57373"
TOP_HIGHLIGHTED = 3


@cache
def cjk_font() -> str | None:
    """The first installed font of `CJK_FONTS`; None (and one warning) when there is none.

    matplotlib lists the system's fonts once and caches the list on disk for good: a font
    installed after that (`apt-get install fonts-wqy-microhei` once the server ran) is not
    in it. So when the cached list has none of ours, the system's font files are looked at
    once more and the new ones added.
    """
    found = _first_cjk()
    if found is None:
        _add_system_fonts()
        found = _first_cjk()
    if found is None:
        log.warning(
            "No CJK font found (%s); Chinese text in report charts will not render."
            " Install fonts-wqy-microhei (Debian/Ubuntu).",
            ", ".join(CJK_FONTS),
        )
    return found


def _first_cjk() -> str | None:
    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def _add_system_fonts() -> None:
    """Add the system's font files that matplotlib's list does not have."""
    manager = font_manager.fontManager
    known = {entry.fname for entry in manager.ttflist}
    for path in font_manager.findSystemFonts():
        if path not in known:
            with contextlib.suppress(OSError, RuntimeError, ValueError):  # a damaged file
                manager.addfont(path)


def ranked_scores(report: Report) -> list[tuple[int, str, float]]:
    """(rank, branch, score) of the ranked branches, best first; the unranked are left out."""
    return [
        (b.rank, b.branch, b.score)
        for b in report.branches
        if b.rank is not None and b.score is not None
    ]


def write_png(report: Report, path: Path) -> None:
    """Draw the branches' scores (a month's score, a quarter's or year's mean) as a PNG."""
    path.write_bytes(report_png(report))


def report_png(report: Report, width_px: int = WIDTH_PX) -> bytes:
    """The report's ranking chart: its heading, the score's name (and how an ungraded
    branch is scored)."""
    label = " ".join(filter(None, [score_label(report.period), pending_note(report)]))
    return ranking_png(heading(report), label, ranked_scores(report), width_px)


def ranking_png(
    title: str, label: str, rows: list[tuple[int, str, float]], width_px: int = WIDTH_PX
) -> bytes:
    """The ranking (rank, branch, score; best first) as PNG bytes, `width_px` wide (a web
    page's column is narrower than a phone's picture viewer). CPU-bound: call it off the
    event loop."""
    font = cjk_font()
    fonts = [font, "DejaVu Sans"] if font else ["DejaVu Sans"]
    style = {"font.family": "sans-serif", "font.sans-serif": fonts}
    with matplotlib.rc_context(style), warnings.catch_warnings():
        # Without a CJK font every Chinese glyph would warn; cjk_font() said it once.
        warnings.filterwarnings("ignore", message="Glyph .* missing from")
        figure = _draw(title, label, rows, width_px)
        out = io.BytesIO()
        figure.savefig(out, format="png", dpi=DPI)
    return out.getvalue()


def _draw(title: str, label: str, rows: list[tuple[int, str, float]], width_px: int) -> Figure:
    height = max(MIN_HEIGHT_IN, HEADER_IN + BAR_IN * len(rows))
    figure = Figure(figsize=(width_px / DPI, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_title(title, fontsize=11, loc="left")
    if not rows:
        axes.set_axis_off()
        axes.text(0.5, 0.5, render("reports/chart_empty"), ha="center", va="center", fontsize=10)
        return figure
    labels = [f"{rank}. {_literal(name)}" for rank, name, _ in rows]
    scores = [score for _, _, score in rows]
    # The first three places, tied ones included.
    colors = [TOP_COLOR if rank <= TOP_HIGHLIGHTED else BAR_COLOR for rank, _, _ in rows]
    positions = range(len(rows))
    bars = axes.barh(positions, scores, color=colors, height=0.7)
    axes.bar_label(bars, labels=[f"{s:.1f}" for s in scores], padding=2, fontsize=7)
    axes.set_yticks(positions, labels=labels, fontsize=8)
    axes.invert_yaxis()  # the best at the top
    axes.set_xlim(0, 112)  # room for the label of a 100
    axes.set_xticks(range(0, 101, 20))
    axes.tick_params(axis="x", labelsize=7)
    axes.set_xlabel(label, fontsize=8)
    axes.spines[["top", "right"]].set_visible(False)
    axes.margins(y=0.01)
    return figure


def _literal(text: str) -> str:
    """The text drawn as typed: a pair of "$" would otherwise start matplotlib's mathtext."""
    return text.replace("$", r"\$")
