"""Cached Public-Token with single-flight refresh before its ttl runs out (API.md §1.4)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

Fetch = Callable[[], Awaitable[tuple[str, float]]]


class TokenCache:
    """Hands out the current token; concurrent callers share one in-flight refresh."""

    def __init__(self, fetch: Fetch, clock: Callable[[], datetime], refresh_margin_s: float) -> None:
        self._fetch = fetch
        self._clock = clock
        self._margin_s = refresh_margin_s
        self._token: str | None = None
        self._refresh_at: datetime | None = None
        self._inflight: asyncio.Task[str] | None = None

    async def get(self) -> str:
        """A token that RuStore should still accept, fetching a new one if needed."""
        token, refresh_at = self._token, self._refresh_at
        if token is not None and refresh_at is not None and self._clock() < refresh_at:
            return token
        if self._inflight is None:
            self._inflight = asyncio.get_running_loop().create_task(self._refresh())
            # Keeps a failed refresh from being reported as "never retrieved" when every waiter left.
            self._inflight.add_done_callback(lambda task: task.cancelled() or task.exception())
        # shield: one caller being cancelled must not cancel the refresh the others are waiting for.
        return await asyncio.shield(self._inflight)

    async def _refresh(self) -> str:
        try:
            token, ttl = await self._fetch()
            # Refresh a margin early, but never later than half-way for very short ttls.
            lead = min(self._margin_s, ttl / 2)
            self._token = token
            self._refresh_at = self._clock() + timedelta(seconds=max(ttl - lead, 0.0))
            return token
        finally:
            self._inflight = None

    def invalidate(self, token: str) -> None:
        """Forget `token` after RuStore rejected it; a newer token fetched meanwhile is kept."""
        if self._token == token:
            self._token = None
            self._refresh_at = None

    async def close(self) -> None:
        """Cancel a refresh still in flight so nothing outlives the client."""
        task = self._inflight
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._token = None
