"""The one exception the emulator's domain raises; handlers render it as RuStore would."""

from __future__ import annotations


class EmulatorError(Exception):
    """A refusal with RuStore's message, HTTP status, envelope code and optional SDK error code."""

    def __init__(self, status: int, message: str, *, code: str = "ERROR", error_code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.error_code = error_code


def not_found(message: str) -> EmulatorError:
    """404 with the NOT_FOUND envelope code suggested by API.md §7.2."""
    return EmulatorError(404, message, code="NOT_FOUND")


def bad_request(message: str, error_code: int | None = None) -> EmulatorError:
    """400 ERROR, optionally tagged with a billing SDK error code (API.md §7.3)."""
    return EmulatorError(400, message, error_code=error_code)
