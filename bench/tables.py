"""Printing a benchmark's results as a Markdown table, for the README."""

from __future__ import annotations

from collections.abc import Sequence


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
