"""The shared objects of one process, built once by server.py and handed to handlers and jobs."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from loguru import logger

from core.clients import create_mongo, create_redis
from core.cpu import CpuPool
from core.ratelimit import RateLimiter
from core.session_state import SessionState
from core.settings import Settings
from core.tokens import TokenService
from documents.passwords import PasswordHasher


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


@dataclass
class AppContext:
    """Everything a handler or job needs; created by `create_context`, closed by `close`."""

    settings: Settings
    mongo: Any
    db: Any
    redis: Any
    cpu: CpuPool
    limiter: RateLimiter
    tokens: TokenService
    passwords: PasswordHasher
    sessions: SessionState
    embedded_mongo: bool = False
    embedded_redis: bool = False
    clock: Callable[[], datetime] = utcnow
    closers: list[Callable[[], Any]] = field(default_factory=list)

    def now(self) -> datetime:
        """The current time (injectable for tests)."""
        return self.clock()

    def key(self, *parts: str) -> str:
        """A Redis key inside this deployment's namespace."""
        return self.settings.redis_prefix + ":".join(parts)

    async def close(self) -> None:
        """Release clients and pools in reverse order of creation."""
        for closer in reversed(self.closers):
            try:
                result = closer()
                if hasattr(result, "__await__"):
                    await result
            except Exception:  # noqa: BLE001 - shutdown must go on
                logger.exception("error while closing a resource")
        self.closers.clear()


def create_context(settings: Settings, *, mongo: tuple[Any, Any, bool] | None = None,
                   redis: tuple[Any, bool] | None = None) -> AppContext:
    """Build the process's clients from settings (tests may inject a store or a Redis client)."""
    mongo_client, db, embedded_mongo = mongo or create_mongo(settings)
    redis_client, embedded_redis = redis or create_redis(settings)
    secret = settings.jwt_secret
    if not secret:
        # Development only (production refuses to start without one): tokens die with the process.
        secret = secrets.token_hex(32)
        if settings.app_env != "test":
            logger.warning("JWT_SECRET is not set: using a random secret, tokens end when the process stops")
    cpu = CpuPool(settings.cpu_workers, settings.cpu_queue_max)
    ctx = AppContext(
        settings=settings,
        mongo=mongo_client,
        db=db,
        redis=redis_client,
        cpu=cpu,
        limiter=RateLimiter(settings, None if embedded_redis else redis_client),
        tokens=TokenService(secret, settings.access_token_ttl_s),
        passwords=PasswordHasher(cpu, settings.bcrypt_rounds),
        sessions=SessionState(
            redis_client, db, settings.redis_prefix, settings.session_cache_ttl_s, settings.access_token_ttl_s + 60
        ),
        embedded_mongo=embedded_mongo,
        embedded_redis=embedded_redis,
    )
    ctx.closers.append(cpu.shutdown)
    if mongo is None:
        ctx.closers.append(mongo_client.close)
    if redis is None:
        ctx.closers.append(redis_client.aclose)
    return ctx
