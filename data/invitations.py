"""One-time binding codes the office issues per member (`qiyi members invite`).

A code is 8 digits: easy to read off paper and type on any phone keypad, and one guess in
10^8. Only a salted hash is stored. Lookups are by member (the 工号 comes with the code), so
each code has a salt of its own and a deliberately slow KDF costs one hash per attempt:
scrypt with n=2^11, r=8 (2 MiB; about 6 ms on the development machine when it is idle,
`python -m bench.invitation_codes`). That is no defence on its own for so small a
code space — a stolen database could still be searched offline, code by code — but it makes
that search cost CPU-days per member instead of seconds, and the real defences are online:
one use, replacement on re-issue, and the per-member limit on wrong codes (which locks the
member until the office issues a new one).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import unicodedata

from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.models import BindFailure, Invitation

CODE_DIGITS = 8
_SCRYPT = {"n": 2**11, "r": 8, "p": 1}
_SCHEME = "scrypt"
# Stored in place of a hash: no typed code can match either. VOID: the code was withdrawn
# (the member left); LOCKED: too many wrong proofs against the member — binding by any
# proof is refused until the office issues a new code.
VOID = "void"
LOCKED = "locked"
# Wrong proofs against one member are kept as bind failures of this pseudo-channel, with the
# member's id as the address: the table and its index serve both limits.
TARGET_CHANNEL = "#member"
_SEPARATORS = str.maketrans("", "", " -_.·—–")


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def grouped(code: str) -> str:
    """'12345678' -> '1234 5678': how a code is printed, easier to read aloud and type."""
    return f"{code[:4]} {code[4:]}"


def normalize_code(text: str) -> str | None:
    """A typed code as 8 ASCII digits — full-width digits, spaces and dashes accepted — or
    None when the text is not one."""
    plain = unicodedata.normalize("NFKC", text).translate(_SEPARATORS)
    if len(plain) != CODE_DIGITS or not (plain.isascii() and plain.isdigit()):
        return None
    return plain


def hash_code(code: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(code.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"{_SCHEME}${salt.hex()}${digest.hex()}"


def code_matches(code: str, stored: str) -> bool:
    """Whether the code is the one hashed in `stored`. Just as slow when nothing is stored
    (no code issued, VOID, LOCKED), so the time of an answer does not tell those apart."""
    scheme, _, rest = stored.partition("$")
    salt_hex, _, digest_hex = rest.partition("$")
    live = scheme == _SCHEME and bool(digest_hex)
    salt = bytes.fromhex(salt_hex) if live else bytes(16)
    digest = hashlib.scrypt(code.encode(), salt=salt, dklen=32, **_SCRYPT)
    return live and hmac.compare_digest(digest.hex(), digest_hex)


async def of_member(session: AsyncSession, member_id: int) -> Invitation | None:
    statement = select(Invitation).where(Invitation.member_id == member_id)
    return (await session.exec(statement)).first()


async def issue(session: AsyncSession, member_id: int, at: dt.datetime) -> str:
    """A new code for the member, replacing any earlier one (used or not); returns it in
    plain, the only time it exists outside the member's hands."""
    code = new_code()
    invitation = await of_member(session, member_id)
    if invitation is None:
        invitation = Invitation(member_id=member_id, code_hash="", issued_at=at)
    invitation.code_hash = hash_code(code)
    invitation.issued_at = at
    invitation.used_at = None
    session.add(invitation)
    return code


async def withdraw(
    session: AsyncSession, member_id: int, at: dt.datetime, marker: str = VOID
) -> bool:
    """No code of the member's works any more (VOID), or no proof at all (LOCKED); whether
    a live code was withdrawn."""
    invitation = await of_member(session, member_id)
    if invitation is None:
        if marker != LOCKED:
            return False
        invitation = Invitation(member_id=member_id, code_hash=marker, issued_at=at)
    live = invitation.used_at is None and invitation.code_hash.startswith(_SCHEME)
    invitation.code_hash = marker
    session.add(invitation)
    return live


def is_locked(invitation: Invitation | None) -> bool:
    return invitation is not None and invitation.code_hash == LOCKED


def use(session: AsyncSession, invitation: Invitation, at: dt.datetime) -> None:
    invitation.used_at = at
    session.add(invitation)


def record_target_failure(session: AsyncSession, member_id: int, at: dt.datetime) -> None:
    session.add(BindFailure(channel=TARGET_CHANNEL, external_id=str(member_id), at=at))


async def target_failures_since(session: AsyncSession, member_id: int, since: dt.datetime) -> int:
    statement = select(func.count()).where(
        BindFailure.channel == TARGET_CHANNEL,
        BindFailure.external_id == str(member_id),
        BindFailure.at >= since,
    )
    return (await session.exec(statement)).one()
