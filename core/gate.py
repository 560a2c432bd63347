"""The per-request Redis round trip: the API-wide rate limit and the session check in one script call.

Every API request needs two answers from Redis: "is this address over RATE_LIMIT_PER_MINUTE?"
and, for authenticated routes, "is this session still active?". Asked separately (the `limits`
library needs a second call to report the window for the X-RateLimit headers) they cost three
round trips and halved throughput in `bench/points.py`; one Lua script answers both in one, and
the scripts of all requests waiting in the same loop tick travel in one pipeline.

The budget is a fixed window aligned to the minute: `INCR` a per-address counter that expires
with its window, so the reset time is exact. A burst straddling a window boundary can reach twice
the budget, which is acceptable for a coarse per-address limit; the strict sign-in budgets keep
using `limits`' sliding windows (core/ratelimit.py). If Redis fails, requests are let through
(counted in `rate_limit_fail_open_total`) and the session is checked in MongoDB instead.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from loguru import logger

from core.metrics import RATE_LIMIT_FAIL_OPEN
from core.ratelimit import Verdict
from core.redis_health import RedisHealth

WINDOW_S = 60
SCRIPT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local session = false
if #KEYS > 1 then session = redis.call('GET', KEYS[2]) end
return {n, session}
"""


@dataclass(frozen=True)
class GateResult:
    """The rate-limit verdict and the cached session value (None: not cached or not asked)."""

    verdict: Verdict
    session_value: str | None
    redis_ok: bool


class _Coalescer:
    """Sends the gate scripts of all requests that arrive in the same loop tick as one pipeline.

    Under load many requests wait for Redis at once; one pipelined round trip for all of them costs
    far less CPU than one round trip each, and a request never waits longer than a single trip.
    """

    def __init__(self, redis: Any, script: Any) -> None:
        self._redis = redis
        self._script = script
        self._pending: list[tuple[list[str], list[Any], asyncio.Future]] = []

    async def call(self, keys: list[str], args: list[Any]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        if not self._pending:
            loop.call_soon(lambda: asyncio.ensure_future(self._flush()))
        self._pending.append((keys, args, future))
        return await future

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for keys, args, _ in batch:
                    await self._script(keys=keys, args=args, client=pipe)
                results = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # noqa: BLE001 - every waiting request learns Redis failed
            results = [exc] * len(batch)
        for (_, _, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


class RequestGate:
    """One Redis script call per request; an in-process counter stands in when Redis is absent."""

    def __init__(self, redis: Any, prefix: str, limit_per_minute: int, *, embedded: bool,
                 health: RedisHealth | None = None) -> None:
        self._redis = redis
        self._health = health or RedisHealth()
        self._prefix = prefix
        self._limit = limit_per_minute
        self._script = None if embedded else redis.register_script(SCRIPT)
        self._coalescer = None if embedded else _Coalescer(redis, self._script)
        self._local: dict[str, tuple[int, int]] = {}  # development fallback: {ip: (window, count)}
        self._warned_at = 0.0

    async def check(self, ip: str, session_id: str | None) -> GateResult:
        """Count one request from `ip` and fetch the session's cached state in the same round trip."""
        window = int(time.time() // WINDOW_S)
        reset_at = float((window + 1) * WINDOW_S)
        if self._script is None:
            return await self._check_local(ip, session_id, window, reset_at)
        keys = [f"{self._prefix}gate:{ip}:{window}"]
        if session_id:
            keys.append(f"{self._prefix}sess:{session_id}")
        if not self._health.available():
            return self._fail_open(reset_at, "skipped while Redis recovers")
        try:
            count, session = await self._coalescer.call(keys, [WINDOW_S + 5])
        except Exception as exc:  # noqa: BLE001 - Redis down: serve, loudly
            self._health.failed()
            return self._fail_open(reset_at, type(exc).__name__)
        self._health.recovered()
        value = session.decode() if isinstance(session, bytes) else session
        return GateResult(self._verdict(int(count), reset_at), value or None, True)

    def _fail_open(self, reset_at: float, why: str) -> GateResult:
        RATE_LIMIT_FAIL_OPEN.inc()
        if time.monotonic() - self._warned_at > 10:
            self._warned_at = time.monotonic()
            logger.warning("Redis unavailable: rate limit failing open", error=why)
        return GateResult(Verdict(True, self._limit, self._limit, reset_at), None, False)

    async def _check_local(self, ip: str, session_id: str | None, window: int, reset_at: float) -> GateResult:
        seen_window, count = self._local.get(ip, (window, 0))
        count = count + 1 if seen_window == window else 1
        self._local[ip] = (window, count)
        if len(self._local) > 100_000:  # keep the development fallback bounded
            self._local = {k: v for k, v in self._local.items() if v[0] == window}
        value = None
        if session_id:
            raw = await self._redis.get(f"{self._prefix}sess:{session_id}")
            value = raw.decode() if isinstance(raw, bytes) else raw
        return GateResult(self._verdict(count, reset_at), value, True)

    def _verdict(self, count: int, reset_at: float) -> Verdict:
        return Verdict(count <= self._limit, self._limit, max(0, self._limit - count), reset_at)
