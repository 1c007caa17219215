"""Branch chat groups and the lessons and news posted to them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import or_
from sqlmodel import and_, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.db import insert_new
from data.members import branch_ids_by_name
from data.models import Branch, BranchGroup, GroupPost, OutboxState


async def set_group(session: AsyncSession, branch: str, channel: str, group_id: str) -> None:
    """The branch's group on `channel` is `group_id` (replacing the one it had)."""
    branch_id = (await branch_ids_by_name(session, {branch}))[branch]
    statement = select(BranchGroup).where(
        or_(
            and_(BranchGroup.branch_id == branch_id, BranchGroup.channel == channel),
            and_(BranchGroup.channel == channel, BranchGroup.group_id == group_id),
        )
    )
    for existing in await session.exec(statement):
        await session.delete(existing)
    await session.flush()
    session.add(BranchGroup(branch_id=branch_id, channel=channel, group_id=group_id))


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
    due = or_(
        and_(GroupPost.state == OutboxState.PENDING.value, GroupPost.due_at <= now),
        and_(GroupPost.state == OutboxState.SENDING.value, col(GroupPost.lease_until) < now),
    )
    statement = (
        select(GroupPost)
        .where(due)
        .order_by(col(GroupPost.due_at), col(GroupPost.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    posts = list(await session.exec(statement))
    for post in posts:
        post.state = OutboxState.SENDING.value
        post.lease_until = now + lease
        session.add(post)
    return posts
