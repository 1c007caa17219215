"""Text that goes into a bounded column is shortened to fit, visibly, never refused there."""

from __future__ import annotations


def shortened(text: str, limit: int) -> str:
    """`text`, or its first `limit` - 1 characters and an ellipsis when it is longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
