"""Signing in to the web console through the chat: no passwords to forget or leak.

At a PC the sign-in page shows a 6-digit code; a secretary or admin sends `登录 123456` to the
bot and the waiting page signs in by itself. On a phone `登录` alone answers with a one-time
link. `qiyi admin link --as <工号>` prints such a link on the server (bootstrap and rescue).
The chat handler, the console and the CLI call these functions; the rules live here.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from enum import StrEnum

from sqlmodel.ext.asyncio.session import AsyncSession

from data import console, throttle
from data.models import ConsoleSignIn, Member, Role

CODE_LIFETIME = dt.timedelta(minutes=5)
LINK_LIFETIME = dt.timedelta(minutes=10)
SESSION_IDLE = dt.timedelta(hours=12)
SESSION_LIFETIME = dt.timedelta(days=7)
# Guessing a code: 5 wrong codes per chat account in 15 minutes. A sign-in page per browser
# address at most 30 times in 10 minutes (each shows a new code); links: 5 in 10 minutes.
WRONG_CODES = (5, dt.timedelta(minutes=15))
PAGES_PER_IP = (30, dt.timedelta(minutes=10))
LINKS_PER_MEMBER = (5, dt.timedelta(minutes=10))
LINK_PATH = "/admin/link/"


class Claim(StrEnum):
    SIGNED_IN = "signed_in"
    NO_SUCH_CODE = "no_such_code"  # wrong, expired, or already used
    AMBIGUOUS = "ambiguous"  # two browsers show the same code: both must ask anew
    THROTTLED = "throttled"
    NOT_STAFF = "not_staff"


@dataclass(frozen=True)
class Claimed:
    outcome: Claim
    sign_in: ConsoleSignIn | None = None


@dataclass(frozen=True)
class Started:
    token: str  # the secret of the browser's waiting cookie, or of the link
    code: str = ""


@dataclass(frozen=True)
class NewSession:
    token: str  # the cookie's value
    csrf: str
    member_id: int


def may_use_console(member: Member) -> bool:
    """Only secretaries and admins who have not left."""
    return member.left_on is None and Role(member.role).rank >= Role.SECRETARY.rank


def _new_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


async def show_code(
    session: AsyncSession, *, ip: str, user_agent: str, at: dt.datetime
) -> Started | None:
    """A new sign-in code for a browser; None when that address asked too often."""
    limit, window = PAGES_PER_IP
    if not await throttle.allowed(session, "console-page", ip, limit=limit, window=window, at=at):
        return None
    token, code = secrets.token_urlsafe(32), _new_code()
    await console.start_sign_in(
        session,
        kind="code",
        token=token,
        code=code,
        at=at,
        lifetime=CODE_LIFETIME,
        ip=ip,
        user_agent=user_agent,
    )
    return Started(token, code)


async def claim_code(
    session: AsyncSession, member: Member, channel: str, code: str, at: dt.datetime
) -> Claimed:
    """`登录 123456` from a staff member's chat: the browser showing the code may sign in as
    them. Wrong codes are counted per chat account (`channel` names it with its id)."""
    if not may_use_console(member):
        return Claimed(Claim.NOT_STAFF)
    assert member.id is not None
    limit, window = WRONG_CODES
    key = f"{member.id}"
    if await throttle.count_since(session, "console-code", key, at - window) >= limit:
        return Claimed(Claim.THROTTLED)
    found = await console.open_codes(session, code, at)
    if len(found) != 1:
        # Counted in a transaction of its own by the caller would be truer; here the count is
        # part of the answer's transaction, which commits (the answer is not an error).
        throttle.note(session, "console-code", key, at)
        return Claimed(Claim.AMBIGUOUS if found else Claim.NO_SUCH_CODE)
    console.claim(session, found[0], member.id, channel)
    return Claimed(Claim.SIGNED_IN, found[0])


async def issue_link(session: AsyncSession, member: Member, at: dt.datetime) -> str | None:
    """A one-time sign-in link's token for the member; None when asked for too often."""
    assert member.id is not None
    limit, window = LINKS_PER_MEMBER
    if not await throttle.allowed(
        session, "console-link", str(member.id), limit=limit, window=window, at=at
    ):
        return None
    token = secrets.token_urlsafe(32)
    await console.start_sign_in(
        session, kind="link", token=token, member_id=member.id, at=at, lifetime=LINK_LIFETIME
    )
    return token


def link_url(public_url: str | None, token: str, fallback_base: str) -> str:
    base = (public_url or fallback_base).rstrip("/")
    return f"{base}{LINK_PATH}{token}"


async def finish(
    session: AsyncSession, token: str, *, kind: str, ip: str, user_agent: str, at: dt.datetime
) -> NewSession | None:
    """Turn a claimed code (the browser's waiting token) or a link into a session, once; None
    when the token is unknown, expired, used, not claimed yet, or its member may no longer
    use the console."""
    sign_in = await console.sign_in_by_token(session, token, at)
    if sign_in is None or sign_in.kind != kind or sign_in.member_id is None:
        return None
    member = await session.get(Member, sign_in.member_id)
    if member is None or member.id is None or not may_use_console(member):
        return None
    console.use(session, sign_in, at)
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    await console.create_session(
        session,
        token=cookie,
        csrf=csrf,
        member_id=member.id,
        at=at,
        lifetime=SESSION_LIFETIME,
        ip=ip,
        user_agent=user_agent,
    )
    return NewSession(cookie, csrf, member.id)


async def pending(session: AsyncSession, token: str, at: dt.datetime) -> ConsoleSignIn | None:
    """The browser's sign-in under way (unexpired, unused), claimed or not."""
    return await console.sign_in_by_token(session, token, at)


_BROWSERS = (
    ("MicroMessenger", "微信内置浏览器"),
    ("wxwork", "企业微信"),
    ("Edg/", "Edge"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("Windows", "Windows"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("Mac OS X", "Mac"),
    ("Linux", "Linux"),
)


def describe_browser(user_agent: str) -> str:
    """ "Chrome（Windows）" from a User-Agent header, for the bot's answer and the sessions
    page; substring checks only (the header comes from outside)."""
    agent = user_agent[:300]
    browser = next((name for mark, name in _BROWSERS if mark in agent), "浏览器")
    system = next((name for mark, name in _SYSTEMS if mark in agent), "")
    return f"{browser}（{system}）" if system else browser
