"""Creates the one MongoDB client and the one Redis client of a process, with development fallbacks."""

from __future__ import annotations

from typing import Any

from loguru import logger

from core.settings import Settings

NOT_PERSISTED = "!!! {what} is in-memory: NOTHING IS PERSISTED and it is not shared between processes. Set {env} for real use."


def create_mongo(settings: Settings) -> tuple[Any, Any, bool]:
    """Return (client, database, embedded) — embedded is the mongomock store used without MONGO_URL."""
    if settings.mongo_url:
        from motor.motor_asyncio import AsyncIOMotorClient

        client = AsyncIOMotorClient(settings.mongo_url, tz_aware=True, uuidRepresentation="standard",
                                    serverSelectionTimeoutMS=5000, appname="rustore-backend")
        return client, client[settings.mongo_db], False
    from mongomock_motor import AsyncMongoMockClient

    if settings.app_env != "test":
        logger.warning(NOT_PERSISTED.format(what="MongoDB (mongomock-motor)", env="MONGO_URL"))
    client = AsyncMongoMockClient(tz_aware=True)
    return client, client[settings.mongo_db], True


def create_redis(settings: Settings) -> tuple[Any, bool]:
    """Return (client, embedded) — embedded is fakeredis, used without REDIS_URL."""
    if settings.redis_url:
        import redis.asyncio as redis
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialBackoff

        # One quick retry, short timeouts: when Redis is down the API must fail open fast, not
        # spend seconds per request in the client's default back-off.
        client = redis.Redis.from_url(
            settings.redis_url, socket_timeout=1.0, socket_connect_timeout=0.5, health_check_interval=30,
            retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
        )
        return client, False
    import fakeredis

    if settings.app_env != "test":
        logger.warning(NOT_PERSISTED.format(what="Redis (fakeredis)", env="REDIS_URL"))
    return fakeredis.FakeAsyncRedis(), True
