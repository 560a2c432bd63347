"""Whether a session may still use its access tokens: Redis in front, MongoDB as the truth.

Every authenticated request asks `is_active`. Redis holds `sess:<id>` = "1" (active, cached for
SESSION_CACHE_TTL_S) or "0" (revoked, kept for the access-token lifetime). Revocation writes "0"
before it returns, so an ended session's tokens stop working at once on every process. A cache
miss, or Redis being down, falls back to the sessions collection.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from loguru import logger

from core.metrics import REDIS_ERRORS
from core.redis_health import RedisHealth
from documents import accounts
from documents.accounts import find_user


class SessionState:
    """Answers 'is this session still active?' for the auth path."""

    def __init__(self, redis: Any, db: Any, prefix: str, cache_ttl_s: int, revoked_ttl_s: int,
                 health: RedisHealth | None = None) -> None:
        self._redis = redis
        self._health = health or RedisHealth()
        self._db = db
        self._prefix = prefix
        self._cache_ttl_s = cache_ttl_s
        self._revoked_ttl_s = revoked_ttl_s
        # Revocations Redis missed (it was down): written as soon as it answers again, because
        # another process may still hold this session's "active" entry in the cache.
        self._unwritten: set[str] = set()

    def _key(self, session_id: str) -> str:
        return f"{self._prefix}sess:{session_id}"

    async def resolve(self, cached: str | None, session_id: str, user_id: str, *, redis_ok: bool) -> bool:
        """Decide from a value the request gate already fetched; MongoDB on a miss (or Redis down)."""
        if self._unwritten and redis_ok:
            await self.mark_revoked(set(self._unwritten))
        if cached is not None and session_id not in self._unwritten:
            return cached == f"1:{user_id}"
        return await self._check_db(session_id, user_id, cache=redis_ok)

    async def is_active(self, session_id: str, user_id: str) -> bool:
        """True if the session exists, belongs to user_id, has not ended and its user still exists."""
        if not self._health.available():
            return await self._check_db(session_id, user_id, cache=False)
        try:
            cached = await self._redis.get(self._key(session_id))
        except Exception as exc:  # noqa: BLE001 - Redis down: MongoDB decides
            self._health.failed()
            REDIS_ERRORS.labels("sessions").inc()
            logger.warning("session cache unavailable, checking MongoDB", error=type(exc).__name__)
            return await self._check_db(session_id, user_id, cache=False)
        if cached is not None:
            value = cached.decode() if isinstance(cached, bytes) else str(cached)
            return value == f"1:{user_id}"
        return await self._check_db(session_id, user_id, cache=True)

    async def _check_db(self, session_id: str, user_id: str, *, cache: bool) -> bool:
        now = datetime.now(UTC)
        session = await accounts.find_active_session(self._db, session_id, now)
        active = session is not None and str(session["user_id"]) == user_id
        if active and await find_user(self._db, user_id) is None:
            active = False
        if cache and self._health.available():
            value = f"1:{user_id}" if active else "0"
            ttl = self._cache_ttl_s if active else self._revoked_ttl_s
            try:
                # NX: never overwrite a "0" that a concurrent revocation just wrote.
                await self._redis.set(self._key(session_id), value, ex=ttl, nx=True)
            except Exception:  # noqa: BLE001
                self._health.failed()
                REDIS_ERRORS.labels("sessions").inc()
        return active

    async def mark_revoked(self, session_ids: Iterable[str]) -> None:
        """Make the sessions' access tokens fail immediately on every process."""
        ids = list(session_ids)
        if not ids:
            return
        if not self._health.available():
            self._unwritten.update(ids)
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for sid in ids:
                    pipe.set(self._key(sid), "0", ex=self._revoked_ttl_s)
                await pipe.execute()
        except Exception as exc:  # noqa: BLE001 - MongoDB already says revoked; retried when Redis is back
            self._health.failed()
            self._unwritten.update(ids)
            REDIS_ERRORS.labels("sessions").inc()
            logger.warning("could not mark sessions revoked in Redis", error=type(exc).__name__, count=len(ids))
            return
        self._unwritten.difference_update(ids)
