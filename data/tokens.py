"""The shared access-token cache: one row per AppID, locked while it is refreshed."""

from __future__ import annotations

import datetime as dt

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.db import insert_new
from data.models import AccessToken


async def read(session: AsyncSession, appid: str) -> AccessToken | None:
    return (await session.exec(select(AccessToken).where(AccessToken.appid == appid))).first()


async def lock(session: AsyncSession, appid: str, now: dt.datetime) -> AccessToken:
    """The token row, locked for this transaction: whoever holds it is the one refresher.

    On SQLite the write lock taken at BEGIN is the lock; on PostgreSQL the row lock.
    """
    placeholder = {"appid": appid, "token": "", "expires_at": now, "fetched_at": now}
    await insert_new(session, AccessToken, [placeholder], ["appid"])
    statement = select(AccessToken).where(AccessToken.appid == appid).with_for_update()
    return (await session.exec(statement)).one()


async def store(
    session: AsyncSession, appid: str, token: str, expires_at: dt.datetime, now: dt.datetime
) -> None:
    row = await lock(session, appid, now)
    row.token, row.expires_at, row.fetched_at = token, expires_at, now
    session.add(row)
