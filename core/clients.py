"""Creates the one MongoDB client and the one Redis client of a process, with development fallbacks."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from loguru import logger
from pymongo.errors import WaitQueueTimeoutError

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


class DeadlineExecutor(ThreadPoolExecutor):
    """Motor's thread pool, refusing work that waited in its queue longer than one operation may take.

    Motor runs each PyMongo call on a small pool of threads (5 per CPU), and PyMongo's timeoutMS
    only starts when a thread picks the call up. With MongoDB hung, every thread is blocked for the
    full timeout and the calls queued behind them would wait many timeouts. Refused instead, they fail
    as "unavailable" at once, so under load a request still answers 503 within about twice
    MONGO_OPERATION_TIMEOUT_MS (queue wait + its own operation).
    """

    def __init__(self, max_workers: int, max_wait_s: float) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix="mongo")
        self.max_wait_s = max_wait_s

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        queued = time.monotonic()

        def run() -> Any:
            waited = time.monotonic() - queued
            if waited > self.max_wait_s:
                raise WaitQueueTimeoutError(f"no MongoDB driver thread free for {waited:.1f} s")
            return fn(*args, **kwargs)

        return super().submit(run)


def install_queue_deadline(max_wait_s: float) -> None:
    """Replace Motor's module-wide executor (motor==3.7.1 looks it up per call) with a DeadlineExecutor."""
    import motor.frameworks.asyncio as motor_asyncio

    current = motor_asyncio._EXECUTOR
    if isinstance(current, DeadlineExecutor) and current.max_wait_s == max_wait_s:
        return
    motor_asyncio._EXECUTOR = DeadlineExecutor(motor_asyncio.max_workers, max_wait_s)
    # Motor re-creates a plain pool in a forked child; nothing here forks after start-up.


def create_mongo(settings: Settings) -> tuple[Any, Any, bool]:
    """Return (client, database, embedded) — embedded is the mongomock store used without MONGO_URL."""
    if settings.mongo_url:
        from motor.motor_asyncio import AsyncIOMotorClient

        install_queue_deadline(settings.mongo_operation_timeout_ms / 1000)
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
