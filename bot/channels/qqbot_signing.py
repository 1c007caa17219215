"""The official QQ Bot platform's Ed25519 signatures (webhook events and callback validation)."""

from __future__ import annotations

import re

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SIGNATURE_SHAPE = re.compile(r"[0-9a-fA-F]{128}")  # 64 bytes in hex


def private_key(secret: str) -> Ed25519PrivateKey:
    """The key pair's seed is the bot secret repeated until 32 bytes long, first 32 bytes."""
    if not secret:
        raise ValueError("the bot secret is empty")
    seed = secret.encode()
    while len(seed) < 32:
        seed += seed
    return Ed25519PrivateKey.from_private_bytes(seed[:32])


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    return key.sign(message).hex()


def verify(key: Ed25519PrivateKey, signature_hex: str, timestamp: str, body: bytes) -> bool:
    """Whether `X-Signature-Ed25519` is the signature of timestamp + raw body."""
    if not SIGNATURE_SHAPE.fullmatch(signature_hex):
        return False
    try:
        signature = bytes.fromhex(signature_hex)
        key.public_key().verify(signature, timestamp.encode() + body)
    except (ValueError, InvalidSignature):
        return False
    return True
