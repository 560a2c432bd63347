"""Rate limits backed by the `limits` library: Redis-shared in production, in-process in development.

Budgets (the API-wide per-address budget is in core/gate.py, in the same Redis call as the
session check):
- ``auth``: AUTH_RATE_LIMIT_PER_MINUTE per IP on register/login/refresh;
- ``login_pair``: failed logins per (email, IP) — an attacker only exhausts their own pair;
- ``login_email``: failed logins per email across all IPs, applied only to logins that do not
  carry a valid ``deviceToken`` the server issued to that account at an earlier sign-in, so an
  attacker failing logins for a victim cannot lock the victim out of a device they already use;
- ``verify``: VERIFY_RATE_LIMIT_PER_MINUTE per user on the calls that ask RuStore (verify, points/buy).

The two login budgets are counters in core/failures.py: `reserve_failures` checks and counts a
failure in one atomic step before the password is checked, `release_failure` gives it back.

When Redis is unreachable the limiter fails open (requests are served, a warning is logged and
``fail_open_total`` counts it): availability of paid features matters more than throttling, and
the bcrypt pool bound still protects the CPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from loguru import logger

from core.failures import Budget, FailureCounters
from core.metrics import RATE_LIMIT_FAIL_OPEN
from core.redis_health import RedisHealth

FAILURE_BUDGETS = ("login_pair", "login_email")


@dataclass(frozen=True)
class Verdict:
    """Outcome of one limit check, with what the X-RateLimit-* headers need."""

    allowed: bool
    limit: int
    remaining: int
    reset_at: float

    @property
    def retry_after(self) -> int:
        """Whole seconds until the window frees a slot (at least 1)."""
        return max(1, int(self.reset_at - time.time() + 0.999))


class RateLimiter:
    """Named budgets over one storage; every method fails open when the storage is down."""

    def __init__(self, settings: Any, redis_client: Any | None, health: RedisHealth | None = None) -> None:
        self._health = health or RedisHealth()
        if redis_client is not None:
            storage = RedisStorage(
                "async+redis://",
                implementation="redispy",
                connection_pool=redis_client.connection_pool,
                key_prefix=f"{settings.redis_prefix}rl",
                wrap_exceptions=True,
            )
        else:
            storage = MemoryStorage()
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        window = settings.login_failure_window_s
        self.items: dict[str, RateLimitItem] = {
            "auth": RateLimitItemPerMinute(settings.auth_rate_limit_per_minute),
            "login_pair": RateLimitItemPerSecond(settings.login_failures_per_pair, window),
            "login_email": RateLimitItemPerSecond(settings.login_failures_per_email, window),
            "verify": RateLimitItemPerMinute(settings.verify_rate_limit_per_minute),
        }
        self.failures = FailureCounters(redis_client, f"{settings.redis_prefix}rl:", window)
        self.fail_open_total = 0

    def _fail_open(self, budget: str, exc: Exception | None) -> Verdict:
        self.fail_open_total += 1
        RATE_LIMIT_FAIL_OPEN.inc()
        if exc is not None:
            self._health.failed()
            logger.warning("rate limiter unavailable, failing open", budget=budget, error=type(exc).__name__)
        item = self.items[budget]
        return Verdict(True, item.amount, item.amount, time.time() + item.get_expiry())

    async def hit(self, budget: str, *key: str) -> Verdict:
        """Consume one unit of a budget and report whether it was still available."""
        item = self.items[budget]
        if not self._health.available():
            return self._fail_open(budget, None)
        if budget in FAILURE_BUDGETS:
            return await self._count_failure(budget, key)
        try:
            allowed = await self._limiter.hit(item, budget, *key)
            stats = await self._limiter.get_window_stats(item, budget, *key)
        except Exception as exc:  # noqa: BLE001 - any storage failure means fail open
            return self._fail_open(budget, exc)
        return Verdict(allowed, item.amount, max(0, stats.remaining), stats.reset_time)

    async def peek(self, budget: str, *key: str) -> Verdict:
        """Report a budget without consuming it (used before checking a password)."""
        item = self.items[budget]
        if not self._health.available():
            return self._fail_open(budget, None)
        if budget in FAILURE_BUDGETS:
            return await self._peek_failures(budget, key)
        try:
            allowed = await self._limiter.test(item, budget, *key)
            stats = await self._limiter.get_window_stats(item, budget, *key)
        except Exception as exc:  # noqa: BLE001
            return self._fail_open(budget, exc)
        return Verdict(allowed, item.amount, max(0, stats.remaining), stats.reset_time)

    async def clear(self, budget: str, *key: str) -> None:
        """Forget a budget's usage (a successful login clears its pair counter)."""
        if not self._health.available():
            return
        try:
            if budget in FAILURE_BUDGETS:
                await self.failures.clear(budget, key)
            else:
                await self._limiter.clear(self.items[budget], budget, *key)
        except Exception as exc:  # noqa: BLE001
            self._fail_open(budget, exc)

    # ---- failed sign-ins: check and count in one step -------------------------------------
    def failure_budget(self, budget: str, *key: str) -> Budget:
        """A login failure budget (login_pair or login_email) applied to one key."""
        return Budget(budget, key, self.items[budget].amount)

    async def reserve_failures(self, *budgets: Budget) -> Verdict:
        """Count one failure on every budget before checking a password, or refuse if any is full."""
        if not self._health.available():
            return self._fail_open(budgets[0].name, None)
        try:
            reservation = await self.failures.reserve(budgets)
        except Exception as exc:  # noqa: BLE001
            return self._fail_open(budgets[0].name, exc)
        if reservation.allowed:
            return Verdict(True, budgets[0].limit, 0, time.time())
        full = reservation.full or budgets[0]
        return Verdict(False, full.limit, 0, time.time() + reservation.retry_after)

    async def release_failure(self, budget: Budget) -> None:
        """Give back a reserved failure: the password turned out to be right, or it was never checked."""
        if not self._health.available():
            return
        try:
            await self.failures.release(budget)
        except Exception as exc:  # noqa: BLE001
            self._fail_open(budget.name, exc)

    async def _count_failure(self, budget: str, key: tuple[str, ...]) -> Verdict:
        limit = self.items[budget].amount
        try:
            used, retry_after = await self.failures.count(budget, key)
        except Exception as exc:  # noqa: BLE001
            return self._fail_open(budget, exc)
        return Verdict(used <= limit, limit, max(0, limit - used), time.time() + retry_after)

    async def _peek_failures(self, budget: str, key: tuple[str, ...]) -> Verdict:
        limit = self.items[budget].amount
        try:
            used, retry_after = await self.failures.used(budget, key)
        except Exception as exc:  # noqa: BLE001
            return self._fail_open(budget, exc)
        return Verdict(used < limit, limit, max(0, limit - used), time.time() + retry_after)
