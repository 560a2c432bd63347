"""Where a bench server keeps its data: the embedded store, or a database of its own on MONGO_URL, dropped afterwards.

With MONGO_URL set in the bench's environment, every server role of every run (ours and the bare baseline, each
rate of `bench.load`) gets a fresh database named `bench_<pid>_<run>_<role>`, shared by that role's processes (so
`--processes 2` measures two processes on one store, which the embedded store cannot) and dropped when the role
stops. Without it each process uses its own in-memory mongomock store, as before.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any


def database_name(run: int, role: str, pid: int | None = None) -> str:
    """A database name of its own for one role of one run (MongoDB allows [A-Za-z0-9_-], at most 63 bytes)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", f"bench_{pid or os.getpid()}_{run}_{role}")[:63]


def server_env(run: int, role: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables that point a bench server at its own database (empty without MONGO_URL)."""
    environ = os.environ if environ is None else environ
    url = environ.get("MONGO_URL")
    return {"MONGO_URL": url, "MONGO_DB": database_name(run, role)} if url else {}


def open_database(environ: Mapping[str, str] | None = None, default: str = "bench") -> Any:
    """The database a bench child serves from: MONGO_URL/MONGO_DB when given, else an embedded mongomock store."""
    environ = os.environ if environ is None else environ
    if environ.get("MONGO_URL"):
        from motor.motor_asyncio import AsyncIOMotorClient

        return AsyncIOMotorClient(environ["MONGO_URL"], tz_aware=True)[environ.get("MONGO_DB", default)]
    from mongomock_motor import AsyncMongoMockClient

    return AsyncMongoMockClient(tz_aware=True)[environ.get("MONGO_DB", default)]


async def drop_database(url: str, name: str) -> None:
    """Drop a bench database when its role has stopped."""
    from motor.motor_asyncio import AsyncIOMotorClient

    client = AsyncIOMotorClient(url)
    try:
        await client.drop_database(name)
    finally:
        client.close()
