"""Map one RuStore HTTP answer (status + raw bytes) to a result or a typed error (API.md §7)."""

from __future__ import annotations

import json
from typing import Any

from rustore.errors import (
    AuthErrorKind,
    RuStoreAuthError,
    RuStoreBreakerOpen,
    RuStoreError,
    RuStoreNotFound,
    RuStoreRejected,
    RuStoreUnavailable,
)

# Documented `/public/auth/` messages (API.md §1.5), matched case-insensitively by substring.
_AUTH_MESSAGES: tuple[tuple[str, AuthErrorKind], ...] = (
    ("range timestamp not valid", AuthErrorKind.CLOCK_SKEW),
    ("company key not found", AuthErrorKind.UNKNOWN_KEY),
    ("company key disabled", AuthErrorKind.DISABLED_KEY),
    ("signature encode error", AuthErrorKind.BAD_SIGNATURE),
    ("company is not found", AuthErrorKind.FORBIDDEN),
    ("company is banned", AuthErrorKind.FORBIDDEN),
)
_OK_CODES = {"OK", "\u041e\u041a", "200"}  # the second is the Cyrillic "ОК" typo seen in the docs
_RETRYABLE_STATUSES = {429, 502, 503, 504}


class TokenExpired(RuStoreError):
    """Internal signal: RuStore rejected the token; the caller refreshes once and retries."""


def _is_envelope(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("code"), str) and ("body" in data or "message" in data)


def _token_rejected(status: int, message: str) -> bool:
    # UNCONFIRMED which HTTP status carries "Jwe token is expired"; clients in the wild also treat
    # 401 (and 403 mentioning the token) as "refresh and retry once" (API.md §1.4, §7.2).
    text = message.lower()
    mentions_token = "jwe" in text or "token" in text
    return status == 401 or ("expired" in text and mentions_token) or (status == 403 and mentions_token)


def interpret(status: int, raw: bytes, *, is_auth: bool) -> Any:
    """Body of a successful answer (envelope unwrapped when present) or raise a typed error."""
    data: Any = None
    parsed = False
    if raw.strip():
        try:
            data = json.loads(raw)
            parsed = True
        except (ValueError, UnicodeDecodeError):
            parsed = False
    if status >= 500 or status == 429:
        raise RuStoreUnavailable(f"RuStore answered HTTP {status}", http_status=status)
    if raw.strip() and not parsed:
        if status < 300:
            raise RuStoreUnavailable(f"RuStore answered HTTP {status} with a malformed JSON body", http_status=status)
        data = None
    if status < 300 and not _is_envelope(data):
        return data  # unwrapped success (V3 subscription) or empty success (S6)
    code = str(data.get("code")) if _is_envelope(data) else None
    message = str((data or {}).get("message") or "") if isinstance(data, dict) else ""
    if status < 300 and code is not None and code.strip().upper() in _OK_CODES:
        return data.get("body")
    _raise_failure(status, code, message, is_auth=is_auth)


def _raise_failure(status: int, code: str | None, message: str, *, is_auth: bool) -> None:
    text = message.lower()
    if is_auth:
        for needle, kind in _AUTH_MESSAGES:
            if needle in text:
                raise RuStoreAuthError(kind, message, http_status=status)
        raise RuStoreAuthError(AuthErrorKind.OTHER, message or f"HTTP {status}", http_status=status)
    if _token_rejected(status, message):
        raise TokenExpired(message or f"HTTP {status}")
    if status == 403 or text == "forbidden":
        raise RuStoreAuthError(AuthErrorKind.FORBIDDEN, message or "Forbidden", http_status=status)
    if status == 404 or (code or "").upper() == "NOT_FOUND" or "not found" in text:
        raise RuStoreNotFound(message or f"HTTP {status}", http_status=status)
    raise RuStoreRejected(message or f"HTTP {status}", http_status=status, code=code)


def retry_safe(exc: BaseException, *, idempotent: bool) -> bool:
    """Whether another attempt may be made: reads always; mutations only if RuStore surely did nothing.

    A timed-out or 500-failed confirm/refund may have been applied, and a blind retry would turn
    success into a confusing "Purchase status must be PAID", so those surface immediately.
    """
    if not isinstance(exc, RuStoreUnavailable) or not exc.retryable:
        return False
    if isinstance(exc, RuStoreBreakerOpen):
        return False
    if idempotent:
        return True
    return not exc.request_sent or exc.http_status in _RETRYABLE_STATUSES


def outcome_of(exc: BaseException | None) -> str:
    """Short label of a call's result for metrics."""
    if exc is None:
        return "ok"
    for kind, label in (
        (RuStoreBreakerOpen, "breaker_open"),
        (RuStoreUnavailable, "unavailable"),
        (TokenExpired, "token_expired"),
        (RuStoreAuthError, "auth_error"),
        (RuStoreNotFound, "not_found"),
        (RuStoreRejected, "rejected"),
    ):
        if isinstance(exc, kind):
            return label
    return "error"
