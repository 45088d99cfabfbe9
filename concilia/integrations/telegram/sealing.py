"""Secrets kept encrypted at rest (a bot's token), readable only with the deployment's SECRET_KEY.

The project has no encryption library yet, so this is the standard construction built from the
standard library: HMAC-SHA256 as a pseudo-random function in counter mode for the keystream and
encrypt-then-MAC with a separate HMAC-SHA256 key, keys derived from SECRET_KEY. A sealed value
opens with SECRET_KEY or any of SECRET_KEY_FALLBACKS, so a key can be rotated the Django way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from django.conf import settings

VERSION = "s1"
_NONCE = 16
_TAG = 32


class SealBroken(ValueError):
    """The sealed value was changed, or was sealed with a key this deployment no longer has."""


def _keys(secret: str, purpose: str) -> tuple[bytes, bytes]:
    master = hmac.new(secret.encode(), f"concilia.sealing:{purpose}".encode(), hashlib.sha256)
    root = master.digest()
    return (
        hmac.new(root, b"encrypt", hashlib.sha256).digest(),
        hmac.new(root, b"authenticate", hashlib.sha256).digest(),
    )


def _keystream(key: bytes, nonce: bytes, length: int) -> bytes:
    blocks = (length + 31) // 32
    stream = b"".join(
        hmac.new(key, nonce + n.to_bytes(4, "big"), hashlib.sha256).digest() for n in range(blocks)
    )
    return stream[:length]


def _xor(data: bytes, stream: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, stream, strict=True))


def seal(plain: str, *, purpose: str) -> str:
    """`plain` encrypted and authenticated for `purpose` (a value sealed for one purpose never
    opens for another)."""
    encrypt_key, mac_key = _keys(settings.SECRET_KEY, purpose)
    nonce = os.urandom(_NONCE)
    data = plain.encode()
    cipher = _xor(data, _keystream(encrypt_key, nonce, len(data)))
    tag = hmac.new(mac_key, VERSION.encode() + nonce + cipher, hashlib.sha256).digest()
    return f"{VERSION}:" + base64.urlsafe_b64encode(nonce + cipher + tag).decode()


def open_sealed(sealed: str, *, purpose: str) -> str:
    """The plain value, or SealBroken."""
    version, _sep, body = sealed.partition(":")
    try:
        raw = base64.urlsafe_b64decode(body.encode())
    except ValueError:
        raise SealBroken("not a sealed value") from None
    if version != VERSION or len(raw) < _NONCE + _TAG:
        raise SealBroken("not a sealed value")
    nonce, cipher, tag = raw[:_NONCE], raw[_NONCE:-_TAG], raw[-_TAG:]
    for secret in [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]:
        encrypt_key, mac_key = _keys(secret, purpose)
        expected = hmac.new(mac_key, VERSION.encode() + nonce + cipher, hashlib.sha256).digest()
        if hmac.compare_digest(expected, tag):
            return _xor(cipher, _keystream(encrypt_key, nonce, len(cipher))).decode()
    raise SealBroken("the value does not open with this deployment's keys")
