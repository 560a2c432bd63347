"""Failed sign-in counters whose check and count are one atomic step (Redis Lua, or in-process in development).

A sign-in reserves one failure on every budget that applies *before* the password is checked, in
one script that refuses all of them if any is already full. A wrong password keeps the
reservation (it is the counted failure); a right one gives it back. So concurrent guesses can
never get more password checks than the budget, however many arrive at once: the last slot is
taken by exactly one of them.

Each counter is a fixed window that starts at its first failure and lasts LOGIN_FAILURE_WINDOW_S.
Keys hold a SHA-256 of (email, address), never the email itself.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# KEYS: counters; ARGV: window seconds, then one limit per key. Returns {1, 0} when every counter
# had room (all were incremented), else {0, index of the first full counter (1-based), its ttl}.
RESERVE = """
for i, key in ipairs(KEYS) do
  local used = tonumber(redis.call('GET', key) or '0')
  if used >= tonumber(ARGV[i + 1]) then
    return {0, i, redis.call('PTTL', key)}
  end
end
for _, key in ipairs(KEYS) do
  redis.call('INCR', key)
  if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, ARGV[1]) end
end
return {1, 0, 0}
"""
RELEASE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used > 0 then redis.call('DECR', KEYS[1]) end
return used
"""
COUNT = """
redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {tonumber(redis.call('GET', KEYS[1])), redis.call('PTTL', KEYS[1])}
"""


@dataclass(frozen=True)
class Budget:
    """One failure budget applied to one key (e.g. login_email for an address)."""

    name: str
    key: tuple[str, ...]
    limit: int


@dataclass(frozen=True)
class Reservation:
    """The outcome of reserve(): allowed, or the full budget and seconds until it frees."""

    allowed: bool
    full: Budget | None = None
    retry_after: int = 0


class FailureCounters:
    """Fixed-window failure counters over Redis (atomic scripts) or process memory."""

    def __init__(self, redis_client: Any | None, prefix: str, window_s: int) -> None:
        self._redis = redis_client
        self._prefix = prefix
        self._window_ms = window_s * 1000
        self._memory: dict[str, tuple[int, float]] = {}  # key -> (count, expires at, monotonic)
        if redis_client is not None:
            self._reserve = redis_client.register_script(RESERVE)
            self._release = redis_client.register_script(RELEASE)
            self._count = redis_client.register_script(COUNT)

    def key(self, budget: Budget | tuple[str, tuple[str, ...]]) -> str:
        """The counter's storage key: the budget's name and a hash of its key parts."""
        name, parts = (budget.name, budget.key) if isinstance(budget, Budget) else budget
        digest = hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:32]
        return f"{self._prefix}lf:{name}:{digest}"

    async def reserve(self, budgets: Sequence[Budget]) -> Reservation:
        """Count one failure on every budget, or on none if any is full (one atomic step)."""
        keys = [self.key(b) for b in budgets]
        if self._redis is None:
            return self._reserve_in_memory(budgets, keys)
        ok, index, ttl_ms = await self._reserve(keys=keys, args=[self._window_ms, *(b.limit for b in budgets)])
        if int(ok) == 1:
            return Reservation(True)
        return Reservation(False, budgets[int(index) - 1], _seconds(int(ttl_ms), self._window_ms))

    async def release(self, budget: Budget) -> None:
        """Give back one reserved failure (the password was right after all)."""
        key = self.key(budget)
        if self._redis is None:
            count, expires = self._live(key)
            if count > 0:
                self._memory[key] = (count - 1, expires)
            return
        await self._release(keys=[key])

    async def count(self, name: str, key: tuple[str, ...]) -> tuple[int, int]:
        """Count one failure unconditionally; return (failures now, seconds until the window ends)."""
        storage_key = self.key((name, key))
        if self._redis is None:
            count, expires = self._live(storage_key)
            expires = expires or time.monotonic() + self._window_ms / 1000
            self._memory[storage_key] = (count + 1, expires)
            return count + 1, _seconds(int((expires - time.monotonic()) * 1000), self._window_ms)
        used, ttl_ms = await self._count(keys=[storage_key], args=[self._window_ms])
        return int(used), _seconds(int(ttl_ms), self._window_ms)

    async def used(self, name: str, key: tuple[str, ...]) -> tuple[int, int]:
        """(failures in the current window, seconds until it ends) without counting one."""
        storage_key = self.key((name, key))
        if self._redis is None:
            count, expires = self._live(storage_key)
            return count, _seconds(int((expires - time.monotonic()) * 1000) if count else 0, self._window_ms)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(storage_key)
            pipe.pttl(storage_key)
            raw, ttl_ms = await pipe.execute()
        return int(raw or 0), _seconds(int(ttl_ms), self._window_ms)

    async def clear(self, name: str, key: tuple[str, ...]) -> None:
        """Forget a counter (a successful login clears its (email, address) pair)."""
        storage_key = self.key((name, key))
        if self._redis is None:
            self._memory.pop(storage_key, None)
            return
        await self._redis.delete(storage_key)

    def _live(self, key: str) -> tuple[int, float]:
        count, expires = self._memory.get(key, (0, 0.0))
        if count and expires <= time.monotonic():
            self._memory.pop(key, None)
            return 0, 0.0
        return count, expires

    def _reserve_in_memory(self, budgets: Sequence[Budget], keys: list[str]) -> Reservation:
        # No await between the check and the count: atomic within the one process that owns the memory.
        for budget, key in zip(budgets, keys, strict=True):
            count, expires = self._live(key)
            if count >= budget.limit:
                return Reservation(False, budget, _seconds(int((expires - time.monotonic()) * 1000), self._window_ms))
        for key in keys:
            count, expires = self._live(key)
            self._memory[key] = (count + 1, expires or time.monotonic() + self._window_ms / 1000)
        return Reservation(True)


def _seconds(ttl_ms: int, window_ms: int) -> int:
    """Whole seconds until a counter frees (at least 1; the whole window if it has no expiry yet)."""
    if ttl_ms < 0:
        ttl_ms = window_ms
    return max(1, math.ceil(ttl_ms / 1000))
