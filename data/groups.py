"""Branch chat groups and the lessons and news posted to them."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import or_
from sqlmodel import and_, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data import audit, leases
from data.audit import Actor
from data.db import insert_new
from data.models import Branch, BranchGroup, GroupPost, OutboxState

# A QQ group number: ASCII digits only (`str.isdigit` would also pass "²" or "٣", which
# `int()` refuses or reads as another number), short enough for OneBot's 64-bit ids.
GROUP_ID = re.compile(r"[0-9]{1,18}")


class GroupError(ValueError):
    """A group setting refused; the message says why, in one line."""


def is_group_id(group_id: str) -> bool:
    return GROUP_ID.fullmatch(group_id) is not None


async def set_group(
    session: AsyncSession, branch: str, channel: str, group_id: str, actor: Actor, at: dt.datetime
) -> None:
    """The branch's group on `channel` is `group_id` (replacing the one it had), audited.

    Raises `GroupError` for a group id that is not ASCII digits or a branch not in the roster
    (a typo must not create a branch).
    """
    if not is_group_id(group_id):
        raise GroupError(f"A QQ group number is ASCII digits only (at most 18): {group_id!r}")
    branch_id = (await session.exec(select(Branch.id).where(Branch.name == branch))).one_or_none()
    if branch_id is None:
        raise GroupError(f"No branch named {branch!r} (the names are as in the roster)")
    statement = select(BranchGroup).where(
        or_(
            and_(BranchGroup.branch_id == branch_id, BranchGroup.channel == channel),
            and_(BranchGroup.channel == channel, BranchGroup.group_id == group_id),
        )
    )
    replaced = list(await session.exec(statement))
    for existing in replaced:
        await session.delete(existing)
    await session.flush()
    session.add(BranchGroup(branch_id=branch_id, channel=channel, group_id=group_id))
    before = {f"{g.branch_id}:{g.channel}": g.group_id for g in replaced}
    await audit.record(
        session,
        actor,
        "group.set",
        object_type="branch_group",
        object_id=f"{branch_id}:{channel}",
        branch_id=branch_id,
        at=at,
        before=before,
        after={"branch": branch, "channel": channel, "group_id": group_id},
    )


async def listing(session: AsyncSession) -> list[tuple[str, str, str]]:
    """(branch, channel, group id), by branch."""
    statement = (
        select(Branch.name, BranchGroup.channel, BranchGroup.group_id)
        .join(BranchGroup, col(BranchGroup.branch_id) == col(Branch.id))
        .order_by(col(Branch.name))
    )
    return [(name, channel, group) for name, channel, group in await session.exec(statement)]


async def on_channel(session: AsyncSession, channel: str) -> list[BranchGroup]:
    statement = select(BranchGroup).where(BranchGroup.channel == channel)
    return list(await session.exec(statement))


@dataclass(frozen=True)
class Post:
    channel: str
    group_id: str
    kind: str
    ref: str
    day: dt.date
    text: str
    due_at: dt.datetime
    image: str = ""

    @property
    def key(self) -> str:
        return f"{self.channel}:{self.group_id}:{self.kind}:{self.ref}:{self.day.isoformat()}"


async def enqueue(session: AsyncSession, posts: Sequence[Post], now: dt.datetime) -> int:
    rows = [
        {
            "key": post.key,
            "channel": post.channel,
            "group_id": post.group_id,
            "kind": post.kind,
            "text": post.text,
            "image": post.image,
            "day": post.day,
            "due_at": post.due_at,
            "state": OutboxState.PENDING.value,
            "attempts": 0,
            "last_error": "",
            "created_at": now,
        }
        for post in posts
    ]
    return await insert_new(session, GroupPost, rows, ["key"])


async def claim_due(
    session: AsyncSession, now: dt.datetime, limit: int, lease: dt.timedelta
) -> list[GroupPost]:
    """Lease up to `limit` due posts, oldest first (see `data.leases`)."""
    return await leases.claim(session, GroupPost, now, limit, lease)
