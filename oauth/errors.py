"""Typed failures of the sign-in providers; the HTTP layer maps each to one status and reason."""

from __future__ import annotations


class ProviderError(Exception):
    """Base class of every failure this package raises on purpose."""


class InvalidProviderToken(ProviderError):
    """The token or code is not valid for us: bad signature, expired, wrong audience, unknown code..."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail  # for logs only; clients get one generic message


class ProviderUnavailable(ProviderError):
    """The provider could not be asked: network error, timeout, 5xx, an unreadable answer, or our setup."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
