"""Client-side proof that concurrent calls really were in flight at once, where no store hook can park them.

The barrier of tests/support/barrier.py parks requests inside the MongoDB proxy, right before a
contested write. Paths whose contested step is elsewhere (a Redis counter, RuStore's auth endpoint)
use this instead: `InFlight.gather` runs the calls like `asyncio.gather` and records `peak`, the most
calls that had started and not yet finished at one moment. `peak == n` means every one of the n
calls was sent before the first answer came back; a test that sends them one after another sees 1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any


class InFlight:
    """Counts calls in flight: `now` at this moment, `peak` the most at once so far."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    async def run(self, call: Awaitable[Any]) -> Any:
        """Await one call, counted while it runs."""
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            return await call
        finally:
            self.now -= 1

    async def gather(self, *calls: Awaitable[Any], return_exceptions: bool = False) -> list[Any]:
        """`asyncio.gather` of the calls, each counted."""
        return await asyncio.gather(*(self.run(call) for call in calls), return_exceptions=return_exceptions)
