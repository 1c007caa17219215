"""Every sentence the bot says is a template in `content/templates/`, rendered here."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).parent / "templates"


@cache
def environment() -> Environment:
    """Compiled once per process; templates are not reloaded while running."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=False,  # plain chat text; the channel adapters escape for their format
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
    )
    env.filters["hours"] = format_hours
    return env


def render(template: str, /, **context: Any) -> str:
    """Render `content/templates/<template>.j2` and trim surrounding blank space."""
    return environment().get_template(f"{template}.j2").render(**context).strip()


def format_hours(minutes: int) -> str:
    """90 -> "1.5", 120 -> "2": hours as people write them."""
    hours = minutes / 60
    return f"{hours:.1f}".rstrip("0").rstrip(".")
