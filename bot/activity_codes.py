"""Rotating sign-in codes: 4 digits from HMAC-SHA256(the activity's secret, the time step).

Nothing is stored per code: the code of any moment is derived again when checked. A code
is good for its own step and the one after it, so a code read out just before it changes
still works; the comparison takes the same time whether the digits match or not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

STEP = dt.timedelta(minutes=2)
DIGITS = 4


def new_secret() -> str:
    return secrets.token_hex(32)


def step_of(at: dt.datetime) -> int:
    return int(at.timestamp()) // int(STEP.total_seconds())


def code_for(secret: str, step: int) -> str:
    digest = hmac.new(bytes.fromhex(secret), step.to_bytes(8, "big"), hashlib.sha256).digest()
    # Dynamic truncation as in HOTP (RFC 4226): 31 bits from an offset the digest chooses.
    offset = digest[-1] & 0x0F
    value = int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF
    return f"{value % 10**DIGITS:0{DIGITS}d}"


def current_code(secret: str, at: dt.datetime) -> str:
    return code_for(secret, step_of(at))


def changes_at(at: dt.datetime) -> dt.datetime:
    """When the code shown at `at` is replaced by the next one."""
    seconds = int(STEP.total_seconds())
    return dt.datetime.fromtimestamp((step_of(at) + 1) * seconds, tz=at.tzinfo)


def accepts(secret: str, code: str, at: dt.datetime) -> bool:
    """Whether `code` is the code of `at`'s step or of the step before it."""
    step = step_of(at)
    given = code.encode()
    matches = [hmac.compare_digest(code_for(secret, s).encode(), given) for s in (step, step - 1)]
    return any(matches)
