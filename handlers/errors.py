"""The shared error shape and how exceptions map onto it: ApiError, domain errors, capacity, RuStore and MongoDB failures."""

from __future__ import annotations

import math
from http import HTTPStatus

import tornado.web

from core.cpu import CpuBusy
from core.mongo_health import is_unavailable
from documents.common import Conflict, DomainError, Invalid, NotFound, Unauthorized
from rustore import RuStoreAuthError, RuStoreConfigError, RuStoreRejected, RuStoreUnavailable

DOMAIN_STATUS: list[tuple[type[DomainError], int]] = [
    (NotFound, 404),
    (Conflict, 409),
    (Unauthorized, 401),
    (Invalid, 400),
]
STATUS_REASON = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 422: "unprocessable",
    429: "rate_limited", 500: "internal_error", 502: "bad_gateway", 503: "service_unavailable",
}
RUSTORE_RETRY_AFTER_S = 5  # RuStore failed this request but the breaker is closed: others get through, so retry soon
DATABASE_RETRY_AFTER_S = 5  # an election takes about 10-12 s: two retries span it
# Outcomes a handler expects: answered with their status, never logged as bugs.
EXPECTED = (tornado.web.HTTPError, DomainError, CpuBusy, RuStoreUnavailable, RuStoreRejected)


class ApiError(tornado.web.HTTPError):
    """An error answered with the shared shape {error, code, reason, details}."""

    def __init__(
        self, status: int, reason: str, message: str | None = None, *,
        details: dict | None = None, headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status)
        self.api_reason = reason
        self.message = message or HTTPStatus(status).phrase
        self.details = details
        self.headers = headers or {}


def domain_error(exc: DomainError) -> ApiError:
    """Map a domain error (documents/) to its HTTP status by type, keeping its reason and details."""
    status = next((code for cls, code in DOMAIN_STATUS if isinstance(exc, cls)), 400)
    details = getattr(exc, "details", None) or None
    return ApiError(status, exc.reason, str(exc), details=details)


def expected_error(exc: BaseException | None) -> ApiError | None:
    """The API error for an exception that is an expected outcome, or None for a real bug."""
    if exc is None or isinstance(exc, ApiError):
        return exc
    if isinstance(exc, DomainError):
        return domain_error(exc)
    if isinstance(exc, CpuBusy):
        return ApiError(503, "server_busy", "The server is busy; retry shortly.", headers={"Retry-After": "1"})
    if is_unavailable(exc):
        return database_unavailable()
    if isinstance(exc, RuStoreUnavailable):
        # While the circuit breaker is open, the time it has left; otherwise a short pause.
        retry_after = math.ceil(exc.retry_after_s) if exc.retry_after_s is not None else RUSTORE_RETRY_AFTER_S
        return ApiError(503, "rustore_unavailable", "RuStore is not reachable right now; retry later.",
                        details={"retryable": True}, headers={"Retry-After": str(max(1, retry_after))})
    if isinstance(exc, (RuStoreAuthError, RuStoreConfigError)):
        return ApiError(503, "rustore_misconfigured", "The server cannot authenticate with RuStore.",
                        details={"retryable": False})
    if isinstance(exc, RuStoreRejected):
        return ApiError(502, "rustore_rejected", f"RuStore refused the request: {exc.message}")
    return None


def database_unavailable() -> ApiError:
    """503 database_unavailable: MongoDB is down, hung or electing a primary; the call may be retried."""
    return ApiError(503, "database_unavailable", "The database is not reachable right now; retry shortly.",
                    details={"retryable": True}, headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)})


def is_credentials_problem(exc: BaseException) -> bool:
    """True for failures that mean our RuStore key or settings are wrong (an operator must act)."""
    return isinstance(exc, (RuStoreAuthError, RuStoreConfigError))


def is_expected(exc: BaseException) -> bool:
    """True for outcomes that are answered, not logged as bugs (a RuStore error we did not map is a bug)."""
    return isinstance(exc, EXPECTED) or is_unavailable(exc)
