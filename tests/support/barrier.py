"""A barrier in the store proxy: make concurrent HTTP requests really meet at one database call."""

from __future__ import annotations

import asyncio
from typing import Any

from mongomock_motor import AsyncMongoMockClient

from tests.support.yielding import YieldingDatabase


class Barrier:
    """Hook parking the first `parties` calls to (collection, method) until all of them arrived.

    `met` is set only if all `parties` callers were parked there at the same time: the proof
    that the requests were in flight at once, past their pre-checks, right before the write.
    A caller that waited `timeout` seconds is let go (so a test fails rather than hangs), and once
    one was let go `met` can no longer be set: callers arriving one after another never meet.
    """

    def __init__(self, parties: int, collection: str = "users",
                 method: str = "find_one_and_update", timeout: float = 5.0) -> None:
        self.parties, self.target, self.timeout = parties, (collection, method), timeout
        self.arrived = 0
        self.waiting = 0
        self.met = False
        self._all_here = asyncio.Event()

    def __call__(self, collection: str, method: str) -> Any:
        if (collection, method) != self.target or self.arrived >= self.parties:
            return None
        self.arrived += 1
        self.waiting += 1
        if self.waiting == self.parties:
            self.met = True
            self._all_here.set()
        return self._wait()

    async def _wait(self) -> None:
        try:
            await asyncio.wait_for(self._all_here.wait(), self.timeout)
        except TimeoutError:
            pass
        finally:
            self.waiting -= 1


class HookedClient:
    """A mongomock-motor client behind the yielding proxy, with a hook that can be armed later."""

    def __init__(self) -> None:
        self._client = AsyncMongoMockClient(tz_aware=True)
        self.hook: Any = None

    def _dispatch(self, collection: str, method: str) -> Any:
        return self.hook(collection, method) if self.hook is not None else None

    def __getitem__(self, name: str) -> YieldingDatabase:
        return YieldingDatabase(self._client[name], self._dispatch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)
