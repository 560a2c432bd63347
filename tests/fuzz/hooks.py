"""Schemathesis hooks for this API: every 4xx/5xx answer must carry the shared error shape.

Loaded by `hooks = "tests.fuzz.hooks"` in schemathesis.toml, inside the `st` process.
"""

from __future__ import annotations

import re

import schemathesis

ERROR_KEYS = {"error", "code", "reason", "details"}
REASON = re.compile(r"^[a-z][a-z0-9_]*$")


def error_shape_problems(status: int, content_type: str, body: object) -> list[str]:
    """What is wrong with an error answer, measured against README's shared shape (empty when nothing is)."""
    if not content_type.startswith("application/json"):
        return [f"Content-Type is {content_type!r}, not application/json"]
    if not isinstance(body, dict):
        return ["the body is not a JSON object"]
    problems = []
    if not set(body) <= ERROR_KEYS:
        problems.append(f"unexpected keys {sorted(set(body) - ERROR_KEYS)}")
    if body.get("code") != status:
        problems.append(f"code {body.get('code')!r} differs from the status {status}")
    if not isinstance(body.get("reason"), str) or not REASON.match(body["reason"]):
        problems.append(f"reason {body.get('reason')!r} is not a snake_case string")
    if not isinstance(body.get("error"), str) or not body["error"]:
        problems.append("error is not a non-empty string")
    if "details" in body and not isinstance(body["details"], dict):
        problems.append("details is not an object")
    return problems


@schemathesis.check
def shared_error_shape(ctx, response, case):  # noqa: ANN001, ANN201 - Schemathesis' check signature
    """Every rejection and failure answers {error, code, reason, details?} as JSON."""
    if response.status_code < 400 or case.method.upper() == "HEAD":
        return None
    try:
        body = response.json()
    except ValueError:
        body = None
    problems = error_shape_problems(response.status_code, (response.headers.get("content-type") or [""])[0], body)
    if problems:
        raise AssertionError(f"{response.status_code} is not in the shared error shape: {'; '.join(problems)}")
    return None
