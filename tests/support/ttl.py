"""MongoDB's TTL monitor for the test store: mongomock never expires documents of a tz-aware client.

`ttl_pass(db, at)` does what one pass of MongoDB's TTL monitor does at time `at`: for every index the
database holds with `expireAfterSeconds` (single field), it deletes the documents whose indexed date is
more than that many seconds before `at`. Documents whose field is missing, None or not a date stay.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any


async def ttl_pass(db: Any, at: datetime) -> dict[str, int]:
    """Delete what MongoDB's TTL monitor would delete at `at`; return the deleted count per collection."""
    deleted: dict[str, int] = {}
    for name in await db.list_collection_names():
        for index in (await db[name].index_information()).values():
            keys = list(index["key"])
            if "expireAfterSeconds" not in index or len(keys) != 1:
                continue
            field = keys[0][0]
            cutoff = at - timedelta(seconds=index["expireAfterSeconds"])
            result = await db[name].delete_many({field: {"$type": "date", "$lt": cutoff}})
            deleted[name] = deleted.get(name, 0) + result.deleted_count
    return deleted
