"""Creates the one MongoDB client and the one Redis client of a process, with development fallbacks."""

from __future__ import annotations

from typing import Any

from loguru import logger

from core.settings import Settings

NOT_PERSISTED = "!!! {what} is in-memory: NOTHING IS PERSISTED and it is not shared between processes. Set {env} for real use."


def mongo_options(settings: Settings) -> dict[str, Any]:
    """The driver options of the one MongoDB client (keyword arguments win over the URL's options).

    Every request is bounded: server selection by MONGO_SERVER_SELECTION_TIMEOUT_MS (an election
    or an outage answers 503 in seconds, not after the driver's default 30 s) and each operation by
    MONGO_OPERATION_TIMEOUT_MS (PyMongo's client-side timeoutMS, which also covers a hung server).
    Retryable writes and reads ride through a step-down. Every write waits for a majority of the
    replica set and every read goes to the primary, so an acknowledged credit or debit survives a
    failover and the next read sees it (docs/mongodb.md explains the choice and its cost).
    """
    selection_ms = settings.mongo_server_selection_timeout_ms
    return {
        "tz_aware": True, "uuidRepresentation": "standard", "appname": "rustore-backend",
        "serverSelectionTimeoutMS": selection_ms, "connectTimeoutMS": max(selection_ms, 1000),
        "timeoutMS": settings.mongo_operation_timeout_ms,
        "retryWrites": True, "retryReads": True, "w": "majority", "readPreference": "primary",
    }


def create_mongo(settings: Settings) -> tuple[Any, Any, bool]:
    """Return (client, database, embedded) — embedded is the mongomock store used without MONGO_URL."""
    if settings.mongo_url:
        from motor.motor_asyncio import AsyncIOMotorClient

        client = AsyncIOMotorClient(settings.mongo_url, **mongo_options(settings))
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
