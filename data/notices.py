"""Notices (通知) from the console: who they reach, by which rung of delivery, and their
outbox rows — chosen and counted in SQL, streamed, so memory stays flat as members grow."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, case, exists, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.audience import STREAM_CHUNK, _reachable
from data.models import Binding, Member, Notice

RUNGS = ("window", "template", "mailbox", "qq")


@dataclass(frozen=True)
class Audience:
    """Members still in the organisation, of these branches (none: every branch) and of
    this role (None: every role)."""

    branch_ids: tuple[int, ...] = ()
    role: str | None = None

    def where(self) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = [col(Member.left_on).is_(None)]
        if self.branch_ids:
            conditions.append(col(Member.branch_id).in_(self.branch_ids))
        if self.role is not None:
            conditions.append(col(Member.role) == self.role)
        return conditions


@dataclass(frozen=True)
class Reach:
    members: int  # in the audience
    rungs: dict[str, int]  # of those who can be reached: by the rung a push takes today

    @property
    def reachable(self) -> int:
        return sum(self.rungs.values())


def _account(channel: str, *more: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(
        Binding.member_id == Member.id,
        Binding.channel == channel,
        col(Binding.reachable).is_(True),
        *more,
    )


async def reach(
    session: AsyncSession, audience: Audience, now: dt.datetime, *, template: bool, qq: bool
) -> Reach:
    """How many the audience holds and how a push would reach each today, in the
    dispatcher's order (`bot.dispatcher.Dispatcher._deliver`): a WeChat account inside its
    48-hour window with budget left; else WeChat's template message when one is configured
    for notices; else the mailbox (shown with the member's next reply). A member without a
    WeChat account that follows gets a QQ private message when QQ is connected."""
    wechat = _account("wechat")
    whens: list[tuple[ColumnElement[bool], str]] = [
        (
            _account(
                "wechat",
                col(Binding.window_until) > now,
                col(Binding.window_used) < col(Binding.window_budget),
            ),
            "window",
        )
    ]
    if template:
        whens.append((wechat, "template"))
    whens.append((wechat, "mailbox"))
    if qq:
        whens.append((_account("qq"), "qq"))
    rung = case(*whens, else_="mailbox")
    counted = (
        select(rung.label("rung"), func.count())
        .select_from(Member)
        .where(*audience.where(), _reachable())
        .group_by(rung)
    )
    rungs = dict.fromkeys(RUNGS, 0)
    for name, how_many in await session.exec(counted):
        rungs[str(name)] += int(how_many)
    total = select(func.count()).select_from(Member).where(*audience.where())
    return Reach(int((await session.exec(total)).one()), rungs)


async def recipients(session: AsyncSession, audience: Audience) -> AsyncIterator[int]:
    """The ids of the audience's members who can be reached, streamed."""
    statement = select(Member.id).where(*audience.where(), _reachable()).order_by(col(Member.id))
    result = await session.stream(statement.execution_options(yield_per=STREAM_CHUNK))
    async for (member_id,) in result:
        yield member_id


async def by_token(session: AsyncSession, token: str) -> Notice | None:
    return (await session.exec(select(Notice).where(Notice.token == token))).first()


async def latest(session: AsyncSession, sent_by: int | None, limit: int) -> Sequence[Notice]:
    """The newest notices: everyone's (`sent_by` None) or one staff member's."""
    statement = select(Notice).order_by(col(Notice.id).desc()).limit(limit)
    if sent_by is not None:
        statement = statement.where(Notice.sent_by == sent_by)
    return (await session.exec(statement)).all()
