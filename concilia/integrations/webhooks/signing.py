"""The signature on every webhook request (the scheme receivers verify, docs/webhooks.md):
`Concilia-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`."""

from __future__ import annotations

import hashlib
import hmac

SCHEME = "v1"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `Concilia-Signature` header's value for this body sent at `timestamp` (Unix seconds)."""
    message = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def verify(secret: str, timestamp: int, body: bytes, header: str) -> bool:
    """True when one of the header's comma-separated signatures matches (constant time)."""
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, part.strip()) for part in header.split(","))
