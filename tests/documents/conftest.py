"""Fixtures for `documents` tests: a fresh in-memory database per test, wrapped to yield like a real server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from bson import ObjectId
from mongomock_motor import AsyncMongoMockClient

from documents.wallet import ledger as ledger
from tests.support.yielding import YieldingDatabase

MakeUser = Callable[..., Awaitable[ObjectId]]


@pytest.fixture
def raw_db() -> Any:
    """A fresh mongomock-motor database (no yielding)."""
    return AsyncMongoMockClient()["documents_test"]


@pytest.fixture
async def db(raw_db: Any) -> YieldingDatabase:
    """The same database behind the yielding proxy, with the ledger's indexes."""
    wrapped = YieldingDatabase(raw_db)
    await ledger.ensure_indexes(wrapped)
    return wrapped


@pytest.fixture
def make_user(db: YieldingDatabase) -> MakeUser:
    """Factory: insert a user with an empty wallet, optionally seeded through the ledger."""

    async def make(balance: int = 0, *, wallet: bool = True) -> ObjectId:
        now = datetime.now(UTC)
        doc: dict[str, Any] = {"_id": ObjectId(), "email": f"{ObjectId()}@example.com",
                               "created_at": now}
        if wallet:
            doc["points"] = ledger.new_wallet(now)
        await db.users.insert_one(doc)
        if balance:
            # Seed through the ledger so the audit sees a consistent history.
            await ledger.credit(db, doc["_id"], balance, "admin_grant", "seed")
        return doc["_id"]

    return make
