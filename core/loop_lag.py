"""Event-loop lag: a task sleeps again and again and records how late it wakes, which is what every request waits."""

from __future__ import annotations

import asyncio

from core.metrics import EVENT_LOOP_LAG

INTERVAL_S = 0.25


async def watch(interval_s: float = INTERVAL_S) -> None:
    """Observe the loop's lag into `event_loop_lag_seconds` until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        await asyncio.sleep(interval_s)
        EVENT_LOOP_LAG.observe(max(0.0, loop.time() - started - interval_s))
