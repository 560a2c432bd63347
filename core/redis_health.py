"""A shared "Redis is down" switch, so a hung Redis costs one timeout every few seconds, not one per request.

Every Redis user on the request path (rate limits, session cache, catalog cache) asks
`available()` first and reports `failed()` when a call raises. After a failure Redis is skipped
for PAUSE_S seconds — requests fail open / fall back to MongoDB at once — and then the next call
tries again. A refused connection fails fast anyway; a hung one would otherwise hold every
request for the client's timeout.
"""

from __future__ import annotations

import time

PAUSE_S = 5.0


class RedisHealth:
    """Process-wide memory of the last Redis failure."""

    def __init__(self, pause_s: float = PAUSE_S) -> None:
        self._pause_s = pause_s
        self._down_until = 0.0

    def available(self) -> bool:
        """False while Redis is being skipped after a failure."""
        return time.monotonic() >= self._down_until

    def failed(self) -> None:
        """Record a failed call: skip Redis for the pause."""
        self._down_until = time.monotonic() + self._pause_s

    def recovered(self) -> None:
        """Record a successful call."""
        self._down_until = 0.0
