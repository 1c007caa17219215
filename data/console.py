"""The web console's sign-ins (codes and links) and sessions, kept as rows so that every
server process sees them."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.models import ConsoleSession, ConsoleSignIn, Member


def digest(token: str) -> str:
    """What is kept of a secret token: its SHA-256 (the token is random, 256 bits: no salt
    or slow hash is needed to keep it from being guessed back)."""
    return hashlib.sha256(token.encode()).hexdigest()


async def start_sign_in(
    session: AsyncSession,
    *,
    kind: str,
    token: str,
    at: dt.datetime,
    lifetime: dt.timedelta,
    code: str = "",
    member_id: int | None = None,
    channel: str = "",
    ip: str = "",
    user_agent: str = "",
) -> ConsoleSignIn:
    sign_in = ConsoleSignIn(
        kind=kind,
        token_hash=digest(token),
        code=code,
        member_id=member_id,
        channel=channel,
        ip=ip[:64],
        user_agent=user_agent[:300],
        created_at=at,
        expires_at=at + lifetime,
    )
    session.add(sign_in)
    await session.flush()
    return sign_in


async def sign_in_by_token(
    session: AsyncSession, token: str, at: dt.datetime
) -> ConsoleSignIn | None:
    """The unexpired, unused sign-in the token belongs to, locked for this transaction."""
    statement = (
        select(ConsoleSignIn)
        .where(
            ConsoleSignIn.token_hash == digest(token),
            col(ConsoleSignIn.expires_at) > at,
            col(ConsoleSignIn.used_at).is_(None),
        )
        .with_for_update()
    )
    return (await session.exec(statement)).first()


async def open_codes(session: AsyncSession, code: str, at: dt.datetime) -> list[ConsoleSignIn]:
    """The browsers showing `code` now, nobody having sent it yet (normally one)."""
    statement = (
        select(ConsoleSignIn)
        .where(
            ConsoleSignIn.kind == "code",
            ConsoleSignIn.code == code,
            col(ConsoleSignIn.expires_at) > at,
            col(ConsoleSignIn.member_id).is_(None),
            col(ConsoleSignIn.used_at).is_(None),
        )
        .with_for_update()
    )
    return list(await session.exec(statement))


def claim(session: AsyncSession, sign_in: ConsoleSignIn, member_id: int, channel: str) -> None:
    sign_in.member_id = member_id
    sign_in.channel = channel
    session.add(sign_in)


def use(session: AsyncSession, sign_in: ConsoleSignIn, at: dt.datetime) -> None:
    sign_in.used_at = at
    session.add(sign_in)


async def create_session(
    session: AsyncSession,
    *,
    token: str,
    csrf: str,
    member_id: int,
    at: dt.datetime,
    lifetime: dt.timedelta,
    ip: str,
    user_agent: str,
) -> ConsoleSession:
    row = ConsoleSession(
        token_hash=digest(token),
        csrf=csrf,
        member_id=member_id,
        created_at=at,
        last_seen_at=at,
        expires_at=at + lifetime,
        ip=ip[:64],
        user_agent=user_agent[:300],
    )
    session.add(row)
    await session.flush()
    return row


@dataclass(frozen=True)
class Visit:
    session: ConsoleSession
    member: Member


async def visit(
    session: AsyncSession, token: str, at: dt.datetime, idle: dt.timedelta
) -> Visit | None:
    """The live session the cookie's token belongs to, with its member; None when there is
    none, it ended, it passed its hard end or sat idle too long."""
    statement = (
        select(ConsoleSession, Member)
        .join(Member, col(Member.id) == col(ConsoleSession.member_id))
        .where(
            ConsoleSession.token_hash == digest(token),
            col(ConsoleSession.ended_at).is_(None),
            col(ConsoleSession.expires_at) > at,
            col(ConsoleSession.last_seen_at) > at - idle,
        )
    )
    row = (await session.exec(statement)).first()
    return Visit(*row) if row else None


async def touch(session: AsyncSession, row: ConsoleSession, at: dt.datetime) -> None:
    """Record a use; written at most once a minute (a page load is not worth a write)."""
    if at - row.last_seen_at < dt.timedelta(minutes=1):
        return
    statement = update(ConsoleSession).where(col(ConsoleSession.id) == row.id)
    await session.exec(statement.values(last_seen_at=at))  # type: ignore[call-overload]


async def end(
    session: AsyncSession,
    at: dt.datetime,
    why: str,
    *,
    member_id: int,
    session_id: int | None = None,
) -> int:
    """End the member's live sessions (or one of them); how many ended."""
    statement = update(ConsoleSession).where(
        col(ConsoleSession.member_id) == member_id, col(ConsoleSession.ended_at).is_(None)
    )
    if session_id is not None:
        statement = statement.where(col(ConsoleSession.id) == session_id)
    result = await session.exec(statement.values(ended_at=at, ended_by=why))  # type: ignore[call-overload]
    return int(result.rowcount or 0)


async def live_sessions(
    session: AsyncSession, member_id: int, at: dt.datetime, idle: dt.timedelta
) -> Sequence[ConsoleSession]:
    statement = (
        select(ConsoleSession)
        .where(
            ConsoleSession.member_id == member_id,
            col(ConsoleSession.ended_at).is_(None),
            col(ConsoleSession.expires_at) > at,
            col(ConsoleSession.last_seen_at) > at - idle,
        )
        .order_by(col(ConsoleSession.last_seen_at).desc())
    )
    return (await session.exec(statement)).all()
