"""Fixed per-minute rate-limit windows: let a test's burst start where it fits in one window."""

from __future__ import annotations

import asyncio
import time


async def same_window() -> None:
    """Wait out the end of a minute: the per-address budget is a fixed window, and a burst must fit in one."""
    into = time.time() % 60
    if into > 55:
        await asyncio.sleep(60.2 - into)
