"""Multi-step dialogs, kept in the database (any process may get the next message)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from data.models import DialogState


async def begin(
    session: AsyncSession, member_id: int, state: str, data: dict[str, Any], until: dt.datetime
) -> None:
    """The member is now in `state` (replacing any other) until `until`."""
    current = await session.get(DialogState, member_id)
    if current is None:
        current = DialogState(member_id=member_id, state=state, expires_at=until)
    current.state, current.data, current.expires_at = state, json.dumps(data), until
    session.add(current)


async def current(
    session: AsyncSession, member_id: int, state: str, now: dt.datetime
) -> dict[str, Any] | None:
    """The dialog's data when the member is in `state` and it has not expired."""
    found = await session.get(DialogState, member_id)
    if found is None or found.state != state or found.expires_at <= now:
        return None
    data: dict[str, Any] = json.loads(found.data or "{}")
    return data


async def active(
    session: AsyncSession, member_id: int, now: dt.datetime
) -> tuple[str, dict[str, Any]] | None:
    """The member's dialog state and data, when one has not expired."""
    found = await session.get(DialogState, member_id)
    if found is None or found.expires_at <= now:
        return None
    data: dict[str, Any] = json.loads(found.data or "{}")
    return found.state, data


async def end(session: AsyncSession, member_id: int) -> None:
    found = await session.get(DialogState, member_id)
    if found is not None:
        await session.delete(found)
