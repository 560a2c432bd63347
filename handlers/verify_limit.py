"""`@verify_limited`: the per-user budget on calls that make the server ask RuStore (verify, points/buy).

Without it one signed-in account could drive RuStore calls at the API's per-address rate from
many addresses, spend our share of RuStore's limits, or open the circuit breaker for everyone.
The decorator goes above `@api` so the OpenAPI document lists its `429 too_many_requests`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from handlers.base import ApiError
from handlers.docs import operation_of

F = TypeVar("F", bound=Callable[..., Any])
REASON = "too_many_requests"


def verify_limited(method: F) -> F:
    """Count the call against VERIFY_RATE_LIMIT_PER_MINUTE for the caller; 429 with Retry-After when spent."""

    @functools.wraps(method)
    async def limited(self: Any, *args: Any, **kwargs: Any) -> Any:
        # A verb that delegates to another limited verb (points/buy -> verify) counts once.
        if not getattr(self, "_verify_counted", False):
            self._verify_counted = True
            verdict = await self.ctx.limiter.hit("verify", self.user_id)
            if not verdict.allowed:
                raise ApiError(429, REASON, "Too many purchase checks from this account; try again shortly.",
                               headers={"Retry-After": str(verdict.retry_after)})
        return await method(self, *args, **kwargs)

    op = operation_of(method)
    if op is not None:
        errors = dict(op.errors)
        errors[429] = (*[r for r in errors.get(429, ()) if r != REASON], REASON)
        limited.__api__ = dataclasses.replace(op, errors=errors)  # type: ignore[attr-defined]
    return limited  # type: ignore[return-value]
