"""Upsert by a unique key, safe against a racing insert of the same key."""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError


async def upsert_unique(db: Any, collection: str, query: dict, update: dict) -> dict:
    """find_one_and_update(upsert) on a unique key; the second of two racing inserts retries and finds the first."""
    for _ in range(2):
        try:
            return await db[collection].find_one_and_update(query, update, upsert=True,
                                                            return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            continue
    raise RuntimeError(f"could not upsert into {collection}")  # pragma: no cover - unique index keeps failing
