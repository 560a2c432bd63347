"""Signatures of outbound events: `Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.

Receivers verify with `verify` (or `python server.py events verify-signature`): recompute the HMAC over
the exact bytes received, compare in constant time, and refuse a timestamp more than TOLERANCE_S away
from their clock so a captured delivery cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time

TOLERANCE_S = 300


class SignatureError(ValueError):
    """The Signature header is missing, malformed, stale or does not match the body."""


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The Signature header value for a body sent at `timestamp` (now by default)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, header: str, body: bytes, *, now: float | None = None, tolerance_s: int = TOLERANCE_S) -> int:
    """Check a Signature header against the raw body; return its timestamp or raise SignatureError."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(name, []).append(value)
    try:
        t = int(parts["t"][0])
    except (KeyError, ValueError):
        raise SignatureError("no timestamp (t=) in the Signature header") from None
    current = time.time() if now is None else now
    if abs(current - t) > tolerance_s:
        raise SignatureError(f"timestamp {t} is more than {tolerance_s} s from now")
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, candidate) for candidate in parts.get("v1", [])):
        raise SignatureError("no v1 signature matches the body")
    return t
