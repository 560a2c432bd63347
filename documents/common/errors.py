"""Domain errors raised by documents/; handlers map them to HTTP statuses by type and `reason`."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every rule violation; `reason` is the stable snake_case code clients see."""

    reason = "domain_error"

    def __init__(self, message: str | None = None, *, reason: str | None = None, **details: Any) -> None:
        super().__init__(message or self.__doc__ or self.reason)
        if reason:
            self.reason = reason
        self.details = details


class NotFound(DomainError):
    """The requested document does not exist (or belongs to someone else)."""

    reason = "not_found"


class Conflict(DomainError):
    """The change conflicts with the current state."""

    reason = "conflict"


class Invalid(DomainError):
    """The input breaks a rule that schema validation cannot see."""

    reason = "invalid"


class Unauthorized(DomainError):
    """The caller's credentials are not acceptable."""

    reason = "unauthorized"


class EmailTaken(Conflict):
    """An account with this email already exists."""

    reason = "email_taken"


class InvalidCredentials(Unauthorized):
    """Email or password is wrong."""

    reason = "invalid_credentials"
