"""MongoDB availability: which driver errors mean "the database cannot be reached now", and the start-up wait.

An outage, a hung server and a replica-set election all surface as PyMongo errors; the API maps
those (and only those) to `503 database_unavailable`, jobs skip their run, and start-up waits with
backoff. Everything else a driver raises (a duplicate key, a bad query) stays what it is.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pymongo
from loguru import logger
from pymongo.errors import ConnectionFailure, ExecutionTimeout, OperationFailure, PyMongoError, WTimeoutError

# Server error codes of a node that is shutting down, stepping down or not (yet) primary: transient.
TRANSIENT_CODES = frozenset({
    6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436,
})
FIRST_BACKOFF_S = 0.25
MAX_BACKOFF_S = 5.0


class MongoUnavailable(RuntimeError):
    """MongoDB did not answer within the start-up timeout; the message is the one-line reason."""


def is_unavailable(exc: BaseException | None) -> bool:
    """True when `exc` means MongoDB could not be reached or did not answer in time (retry later)."""
    if isinstance(exc, (ConnectionFailure, ExecutionTimeout, WTimeoutError)):
        # ConnectionFailure covers AutoReconnect, NetworkTimeout, NotPrimaryError and ServerSelectionTimeoutError.
        return True
    if isinstance(exc, OperationFailure):
        return exc.code in TRANSIENT_CODES or exc.has_error_label("RetryableWriteError")
    return isinstance(exc, PyMongoError) and bool(getattr(exc, "timeout", False))


def short_reason(exc: BaseException) -> str:
    """One line saying why MongoDB did not answer, without the driver's topology dump."""
    text = str(exc).split(", Timeout:")[0].split(", Topology Description:")[0]
    text = re.sub(r"\s*\(configured timeouts:[^)]*\)", "", text)
    text = re.sub(r"^[\w.\-\[\]:]+:\d+: ", "", text)  # "host:port: reason" -> "reason"
    text = " ".join(text.split()) or type(exc).__name__
    return text[:200]


def mongo_hosts(url: str) -> str:
    """The host:port list of a MongoDB URL, without credentials or options (safe to log)."""
    rest = url.split("://", 1)[-1]
    hosts = rest.split("/", 1)[0].split("?", 1)[0]
    hosts = hosts.rsplit("@", 1)[-1]
    return hosts or "localhost:27017"


async def wait_for_mongo(db: Any, url: str, timeout_s: float, *, attempt_s: float = 3.0,
                         sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> int:
    """Ping until MongoDB answers, one log line per failed attempt; MongoUnavailable after `timeout_s`.

    Returns the number of attempts it took.
    """
    where = mongo_hosts(url)
    deadline = time.monotonic() + timeout_s
    backoff = FIRST_BACKOFF_S
    attempt = 0
    while True:
        attempt += 1
        remaining = deadline - time.monotonic()
        try:
            with pymongo.timeout(max(0.1, min(attempt_s, remaining))):
                await db.command("ping")
            if attempt > 1:
                logger.info("MongoDB at {} answers after {} attempts", where, attempt)
            return attempt
        except PyMongoError as exc:
            reason = short_reason(exc)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise MongoUnavailable(f"MongoDB at {where} did not answer within {timeout_s:g} s ({reason})")
        logger.warning("waiting for MongoDB at {} ({})", where, reason)
        await sleep(min(backoff, remaining))
        backoff = min(backoff * 2, MAX_BACKOFF_S)
