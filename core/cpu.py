"""A bounded thread pool for CPU-heavy work (bcrypt, image rendering) kept off the event loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class CpuBusy(RuntimeError):
    """The CPU queue is full; the caller should answer 503 and let the client retry."""


class CpuPool:
    """Runs callables in a few threads and refuses work beyond a queue bound.

    bcrypt releases the GIL, so one worker on a 2-core machine hashes at full speed while the
    event loop keeps the other core; the bound turns a login storm into fast 503s instead of an
    ever-growing queue of requests that time out anyway.
    """

    def __init__(self, workers: int, queue_max: int) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="cpu")
        self._queue_max = max(1, queue_max)
        self._in_flight = 0
        self.completed = 0

    @property
    def in_flight(self) -> int:
        """Jobs queued or running right now."""
        return self._in_flight

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run fn(*args, **kwargs) in the pool; raise CpuBusy when the queue is full."""
        if self._in_flight >= self._queue_max:
            raise CpuBusy("cpu queue full")
        self._in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))
            self.completed += 1
            return result
        finally:
            self._in_flight -= 1

    def shutdown(self) -> None:
        """Stop accepting work and wait for running jobs."""
        self._pool.shutdown(wait=True, cancel_futures=True)
