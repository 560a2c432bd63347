"""Typed failures raised by the RuStore client and the notification decoder."""

from __future__ import annotations

from enum import StrEnum


class RuStoreError(Exception):
    """Base class of every failure this package raises on purpose."""


class RuStoreConfigError(RuStoreError, ValueError):
    """Local configuration is unusable (bad private key, missing app id, bad notification key)."""


class RuStoreNotFound(RuStoreError):
    """RuStore does not know the invoice, purchase, subscription or token asked for."""

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status


class RuStoreRejected(RuStoreError):
    """RuStore understood the request and refused it (wrong state, bad request, already refunded...)."""

    def __init__(self, message: str, *, http_status: int | None = None, code: str | None = None) -> None:
        super().__init__(f"RuStore rejected the request: {message} (HTTP {http_status}, code {code})")
        self.message = message
        self.http_status = http_status
        self.code = code


class AuthErrorKind(StrEnum):
    """Why RuStore refused to authenticate us; values are stable for metrics and alerts."""

    UNKNOWN_KEY = "unknown_key"
    DISABLED_KEY = "disabled_key"
    CLOCK_SKEW = "clock_skew"
    BAD_SIGNATURE = "bad_signature"
    FORBIDDEN = "forbidden"
    TOKEN_REJECTED = "token_rejected"
    OTHER = "other"


_AUTH_HINTS: dict[AuthErrorKind, str] = {
    AuthErrorKind.UNKNOWN_KEY: "RuStore does not know this keyId (deleted or re-created in the console?)",
    AuthErrorKind.DISABLED_KEY: "the API key is disabled in RuStore Console",
    AuthErrorKind.CLOCK_SKEW: "our clock differs from RuStore's by more than 60 s (check NTP)",
    AuthErrorKind.BAD_SIGNATURE: "the signature does not match: private key and keyId do not belong together",
    AuthErrorKind.FORBIDDEN: "the key is not allowed to call this method or app (check the key's methods/apps)",
    AuthErrorKind.TOKEN_REJECTED: "RuStore rejected a freshly issued token",
    AuthErrorKind.OTHER: "authentication failed",
}


class RuStoreAuthError(RuStoreError):
    """Authentication or authorisation failed; `kind` says which, the message says what to check."""

    def __init__(self, kind: AuthErrorKind, message: str | None, *, http_status: int | None = None) -> None:
        super().__init__(f"RuStore auth failed [{kind.value}]: {_AUTH_HINTS[kind]}; RuStore said: {message!r}")
        self.kind = kind
        self.message = message
        self.http_status = http_status


class RuStoreUnavailable(RuStoreError):
    """RuStore could not be reached or answered garbage; safe to retry later."""

    retryable = True
    # Set by the transport: whether this failure was part of a wider outage (so no one item is to blame),
    # and, while the circuit breaker is open, how long until it lets calls through again.
    outage = False
    retry_after_s: float | None = None

    def __init__(self, message: str, *, http_status: int | None = None, request_sent: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        # False when the request provably never left (connect error, breaker open): retrying a
        # mutation is then safe even though its outcome is otherwise unknown.
        self.request_sent = request_sent


class RuStoreBreakerOpen(RuStoreUnavailable):
    """The circuit breaker is open: we stopped calling RuStore for a while after repeated failures."""

    def __init__(self, message: str) -> None:
        super().__init__(message, request_sent=False)


class NotificationError(RuStoreError):
    """Base class of webhook decoding failures; the webhook must not be acted upon."""


class NotificationEnvelopeError(NotificationError):
    """The HTTP body is not the `{id, timestamp, payload}` JSON object RuStore sends."""


class NotificationBase64Error(NotificationError):
    """`payload` is not standard Base64."""


class NotificationDecryptError(NotificationError):
    """AES-GCM authentication failed: the payload was tampered with or encrypted with another key.

    GCM cannot tell those two apart, so they are one error on purpose.
    """


class NotificationMissingKeyError(NotificationError):
    """No key is configured that could decrypt this notification."""


class NotificationKeyMismatchError(NotificationError):
    """The payload decrypted with the sandbox key but claims to be a real-payment notification."""


class NotificationPlaintextError(NotificationError):
    """The decrypted payload (or its `data` string) is not the JSON RuStore documents."""


class NotificationAppIdError(NotificationError):
    """The notification is for another application id."""
