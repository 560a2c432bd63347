"""`@api(...)`: the one declaration of a verb's contract, used both to validate requests and to write the OpenAPI document.

A verb declares its request body and query schemas, success responses and the error reasons it
can answer. `APIHandler.load()` validates with exactly the declared body schema (and refuses a
different one), so the documentation cannot drift from what the handler enforces. Errors every
route shares (auth, validation, size, rate limit, internal) are added automatically.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from marshmallow import Schema

F = TypeVar("F", bound=Callable[..., Any])
AUTH_ERRORS = ("missing_token", "invalid_token", "session_ended")
BODY_ERRORS = ("invalid_json", "validation_failed")
# 1..255 printable ASCII characters: what handlers.points.idempotency_key accepts and the document states.
IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7e]{1,255}$"


@dataclass(frozen=True)
class Operation:
    """A documented verb: what it takes, what it answers, and why it can fail."""

    summary: str
    body: type[Schema] | None = None
    query: type[Schema] | None = None
    raw_body: type[Schema] | None = None
    responses: Mapping[int, type[Schema] | str | None] = field(default_factory=dict)
    errors: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    idempotency_key: bool = False
    description: str | None = None
    deprecated: bool = False


def api(
    summary: str, *, body: type[Schema] | None = None, query: type[Schema] | None = None,
    responses: Mapping[int, type[Schema] | str | None] | None = None,
    errors: Mapping[int, tuple[str, ...] | list[str] | str] | None = None, idempotency_key: bool = False,
    description: str | None = None, raw_body: type[Schema] | None = None,
) -> Callable[[F], F]:
    """Attach an Operation to a verb method. `responses` maps status to a schema, a media type, or None (no body).

    `raw_body` documents a body the handler reads with `raw_body()` and checks itself (a signed or
    encrypted webhook): it is never given to `load()`, so the shared JSON validation errors do not apply.
    """
    normalised = {int(k): (v,) if isinstance(v, str) else tuple(v) for k, v in (errors or {}).items()}

    def decorate(method: F) -> F:
        method.__api__ = Operation(  # type: ignore[attr-defined]
            summary=summary, body=body, query=query, raw_body=raw_body, responses=dict(responses or {200: None}),
            errors=normalised, idempotency_key=idempotency_key, description=description,
        )
        return method

    return decorate


def operation_of(method: Any) -> Operation | None:
    """The Operation declared on a verb method, if any."""
    return getattr(method, "__api__", None)


def all_errors(op: Operation, *, public: bool, path_params: bool = False) -> dict[int, list[str]]:
    """The verb's error reasons by status, including the ones every route shares.

    `path_params`: a path segment outside the route's pattern reaches the JSON catch-all, `404 not_found`.
    """
    merged: dict[int, list[str]] = {}

    def add(status: int, reasons: tuple[str, ...] | list[str]) -> None:
        bucket = merged.setdefault(status, [])
        bucket.extend(r for r in reasons if r not in bucket)

    for status, reasons in op.errors.items():
        add(status, reasons)
    if not public:
        add(401, AUTH_ERRORS)
    if op.body is not None:
        add(400, BODY_ERRORS)
        add(413, ("payload_too_large",))
        add(415, ("unsupported_media_type",))
    if op.raw_body is not None:
        add(413, ("payload_too_large",))
    if op.query is not None:
        add(400, ("validation_failed",))
    if op.idempotency_key:
        add(400, ("idempotency_key_required", "invalid_idempotency_key"))
    if path_params:
        add(404, ("not_found",))
    add(429, ("rate_limited",))
    add(500, ("internal_error",))
    add(503, ("database_unavailable",))  # MongoDB down, hung or electing (handlers/errors.py)
    return dict(sorted(merged.items()))
