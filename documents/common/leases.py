"""The `leases` collection: named, expiring locks so one process at a time runs a job.

A lease is one document `{_id: name, owner, acquired_at, expires_at}`. Acquiring is one atomic
upsert whose filter matches only a free or expired lease (or one we already hold); when someone
else holds it, the upsert collides with the existing `_id` and fails, which means "not acquired".
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

COLLECTION = "leases"
INDEXES: dict[str, list] = {}


async def acquire_lease(db: Any, name: str, owner: str, now: datetime, ttl: timedelta) -> bool:
    """Take or extend the lease `name` for `owner` until now + ttl; False if another owner holds it."""
    try:
        await db[COLLECTION].find_one_and_update(
            {"_id": name, "$or": [{"expires_at": {"$lte": now}}, {"owner": owner}]},
            {"$set": {"owner": owner, "acquired_at": now, "expires_at": now + ttl}},
            upsert=True,
        )
    except DuplicateKeyError:
        return False
    return True


async def release_lease(db: Any, name: str, owner: str) -> None:
    """Give the lease back early (only if we still hold it)."""
    await db[COLLECTION].delete_one({"_id": name, "owner": owner})


async def find_lease(db: Any, name: str) -> dict | None:
    """The lease document, or None when nobody ever held it."""
    return await db[COLLECTION].find_one({"_id": name})
