"""Printing a benchmark's results: as a Markdown table, for the README, or as a table on a
terminal."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table


def print_markdown(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    header: Sequence[str],
    footer: Sequence[str],
    text_columns: int = 2,
) -> None:
    """Header lines as a list, the table (the first `text_columns` left-aligned, the rest
    right-aligned), then footer lines (indented ones printed as they are)."""
    for line in header:
        print(f"- {line}")
    print()
    print("| " + " | ".join(columns) + " |")
    alignment = ["---"] * text_columns + ["---:"] * (len(columns) - text_columns)
    print("|" + "|".join(alignment) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    for line in footer:
        print(line if line.startswith(" ") else f"- {line}")


def terminal(width: int) -> Console:
    """Where a report is printed: the terminal, or `width` columns when the output is piped
    (not squeezed into 80)."""
    console = Console()
    return console if console.is_terminal else Console(width=width)


def rich_table(
    columns: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int = 2
) -> Table:
    """The table for a terminal: the first `text_columns` left-aligned, the rest
    right-aligned."""
    table = Table()
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i < text_columns else "right")
    for row in rows:
        table.add_row(*row)
    return table


def print_rich(
    console: Console, header: Sequence[str], table: Table, footer: Sequence[str]
) -> None:
    """What `print_markdown` prints, on a terminal: header lines, the table, then footer
    lines, each line as it is (no markup, no highlighting)."""
    for line in header:
        console.print(line, markup=False, highlight=False)
    console.print(table)
    for line in footer:
        console.print(line, markup=False, highlight=False)
