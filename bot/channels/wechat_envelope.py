"""The WeChat Official Account envelope: signatures, replay window, safe XML, AES (safe mode).

wechatpy does the protocol work (signing, AES, message parsing); this module adds what
it leaves to the caller: constant-time comparison, timestamp freshness, refusing DTDs
and entities before any XML parser sees them, and the previous key during a rotation.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring
from wechatpy.crypto import BaseWeChatCrypto, WeChatCrypto
from wechatpy.utils import WeChatSigner

from bot.channels.freshness import unix_timestamp, within

# A SHA-1 in hex: what `signature` and `msg_signature` always are.
SIGNATURE_SHAPE = re.compile(r"[0-9a-fA-F]{40}")
# WeChat's nonces are decimal numbers; anything printable up to the column's 64 is let through.
NONCE_SHAPE = re.compile(r"[!-~]{1,64}")


class Refused(Exception):
    """The request is not acceptable; `status` is the HTTP answer (400, 403)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def signature(*parts: str) -> str:
    """sha1 of the sorted, concatenated parts: WeChat's `signature` and `msg_signature`."""
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


def check_signature(expected_parts: tuple[str, ...], given: str | None) -> None:
    """Refuse (403) a signature that is missing, malformed or wrong, in constant time.

    The shape is checked first: `hmac.compare_digest` raises TypeError on non-ASCII text (a
    500 instead of a refusal), and a signature of another length or alphabet is wrong anyway.
    """
    if given is None or not SIGNATURE_SHAPE.fullmatch(given):
        raise Refused(403, "bad signature")
    expected = signature(*expected_parts).encode()
    if not hmac.compare_digest(expected, given.lower().encode()):
        raise Refused(403, "bad signature")


def check_fresh(timestamp: str | None, now: int, window: int) -> None:
    """Refuse a timestamp more than `window` seconds from now (a replayed request)."""
    moment = unix_timestamp(timestamp)
    if moment is None:
        raise Refused(400, "missing timestamp")
    if not within(moment, now, window):
        raise Refused(403, "stale timestamp")


def check_nonce(nonce: str | None) -> None:
    if nonce is None or not NONCE_SHAPE.fullmatch(nonce):
        raise Refused(400, "missing or malformed nonce")


def parse_xml(body: bytes | str) -> dict[str, str]:
    """The top-level fields of the `<xml>` document (name → text); DTDs, entities and
    malformed XML are refused unexpanded."""
    try:
        root = defused_fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise Refused(400, f"forbidden XML construct: {type(exc).__name__}") from None
    except (ParseError, ValueError) as exc:
        raise Refused(400, f"malformed XML: {exc}") from None
    if root.tag != "xml" or len(root) == 0:
        raise Refused(400, "the document is not <xml> with fields")
    return {field.tag: field.text or "" for field in root}


@dataclass(frozen=True)
class SafeMode:
    """AES keys of the account: the current one, and the previous one during a rotation.

    `app_id` is the ReceiveId the plaintext must end with: the AppID on WeChat, the CorpID
    on WeCom (whose crypto, `wechatpy.enterprise.crypto.WeChatCrypto`, is passed as `kind`).
    """

    token: str
    app_id: str
    current: BaseWeChatCrypto
    previous: BaseWeChatCrypto | None = None

    @classmethod
    def create(
        cls,
        token: str,
        app_id: str,
        key: str,
        previous_key: str | None,
        kind: type[BaseWeChatCrypto] = WeChatCrypto,
    ) -> SafeMode:
        return cls(
            token,
            app_id,
            kind(token, key, app_id),
            kind(token, previous_key, app_id) if previous_key else None,
        )

    def decrypt(
        self, envelope: Mapping[str, Any], msg_signature: str | None, ts: str, nonce: str
    ) -> str:
        """The inner XML of an encrypted envelope, checking `msg_signature` first."""
        encrypted = envelope.get("Encrypt")
        if not isinstance(encrypted, str) or not encrypted:
            raise Refused(400, "no Encrypt element")
        check_signature((self.token, ts, nonce, encrypted), msg_signature)
        assert msg_signature is not None
        for crypto in (self.current, self.previous):
            if crypto is None:
                continue
            try:
                return str(crypto.decrypt_message(dict(envelope), msg_signature.lower(), ts, nonce))
            except Exception:  # wechatpy raises many kinds for a wrong key or corrupt data
                continue
        raise Refused(400, "cannot decrypt with the current or previous key")

    def encrypt(self, reply_xml: str, nonce: str, timestamp: int) -> str:
        return str(self.current.encrypt_message(reply_xml, nonce, str(timestamp)))
