"""The WeChat Official Account envelope: signatures, replay window, safe XML, AES (safe mode).

wechatpy does the protocol work (signing, AES, message parsing); this module adds what
it leaves to the caller: constant-time comparison, timestamp freshness, refusing DTDs
and entities before any XML parser sees them, and the previous key during a rotation.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner


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
    if not given or not hmac.compare_digest(signature(*expected_parts), given.lower()):
        raise Refused(403, "bad signature")


def check_fresh(timestamp: str | None, now: int, window: int) -> None:
    """Refuse a timestamp more than `window` seconds from now (a replayed request)."""
    if not timestamp or not timestamp.isdigit():
        raise Refused(400, "missing timestamp")
    if abs(int(timestamp) - now) > window:
        raise Refused(403, "stale timestamp")


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
    """AES keys of the account: the current one, and the previous one during a rotation."""

    token: str
    app_id: str
    current: WeChatCrypto
    previous: WeChatCrypto | None = None

    @classmethod
    def create(cls, token: str, app_id: str, key: str, previous_key: str | None) -> SafeMode:
        return cls(
            token,
            app_id,
            WeChatCrypto(token, key, app_id),
            WeChatCrypto(token, previous_key, app_id) if previous_key else None,
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
