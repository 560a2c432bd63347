"""Ledger storage: the `transactions` entry model, wallet shape, indexes and entry reads.

`documents.wallet.ledger` owns the balance-changing API and documents the full
exactly-once design; `documents.wallet.outbox` writes entries from a wallet's
outbox; `documents.wallet.audit` checks the whole thing.  An entry, as admins
see it in Compass::

    {_id, user_id, seq: 1, 2, 3..., type, amount (signed), balance_after,
     reference, idempotency_key, created_at (UTC), meta: {...}}

Entries are never updated or deleted; a correction is a new entry whose
``meta.corrects`` holds the corrected entry's ``_id``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel

from documents.common import bson_now, utc

USERS = "users"
TRANSACTIONS = "transactions"

CREDIT_TYPES = frozenset({"buy", "refund", "subscription_grant", "admin_grant"})
DEBIT_TYPES = frozenset({"spend", "admin_debit"})
CLAWBACK = "clawback"
ENTRY_TYPES = CREDIT_TYPES | DEBIT_TYPES | {CLAWBACK}

INDEXES: dict[str, list[IndexModel]] = {
    TRANSACTIONS: [
        # The durable idempotency guard: one entry per (user, key) forever.
        IndexModel([("user_id", ASCENDING), ("idempotency_key", ASCENDING)],
                   unique=True, name="user_idempotency_key"),
        # History pages, audit scans, and a hard stop against two entries
        # claiming the same position in a user's chain.
        IndexModel([("user_id", ASCENDING), ("seq", DESCENDING)],
                   unique=True, name="user_seq"),
        IndexModel([("user_id", ASCENDING), ("type", ASCENDING), ("seq", DESCENDING)],
                   name="user_type_seq"),
    ],
    USERS: [
        # Set only while the outbox is non-empty, so the index stays tiny.
        IndexModel([("points.pending_since", ASCENDING)], sparse=True,
                   name="points_pending_since"),
    ],
}


def new_wallet(now: datetime) -> dict[str, Any]:
    """Return the `points` sub-document for a newly registered user."""
    return {"balance": 0, "seq": 0, "updated_at": bson_now(now), "recent": [], "outbox": []}


async def ensure_indexes(db: Any) -> None:
    """Create the ledger's indexes (idempotent)."""
    for name, models in INDEXES.items():
        await db[name].create_indexes(models)


@dataclass(frozen=True)
class Wallet:
    """A user's current balance."""

    balance: int
    updated_at: datetime | None


@dataclass(frozen=True)
class LedgerEntry:
    """One immutable ledger entry as stored in `transactions`."""

    id: ObjectId
    user_id: ObjectId
    seq: int
    type: str
    amount: int
    balance_after: int
    reference: str | None
    idempotency_key: str
    created_at: datetime
    # Left out of the hash (dicts are unhashable) but still compared.
    meta: dict[str, Any] = field(default_factory=dict, hash=False)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> LedgerEntry:
        """Build an entry from a `transactions` document."""
        return cls(id=doc["_id"], user_id=doc["user_id"], seq=doc["seq"],
                   type=doc["type"], amount=doc["amount"],
                   balance_after=doc["balance_after"], reference=doc.get("reference"),
                   idempotency_key=doc["idempotency_key"],
                   created_at=utc(doc["created_at"]), meta=dict(doc.get("meta") or {}))

    def to_doc(self) -> dict[str, Any]:
        """Return the `transactions` document for this entry."""
        return {"_id": self.id, "user_id": self.user_id, "seq": self.seq,
                "type": self.type, "amount": self.amount,
                "balance_after": self.balance_after, "reference": self.reference,
                "idempotency_key": self.idempotency_key,
                "created_at": self.created_at, "meta": self.meta}

    def to_api(self) -> dict[str, Any]:
        """Return the camelCase JSON shape exposed to apps."""
        return {"id": str(self.id), "type": self.type, "amount": self.amount,
                "balanceAfter": self.balance_after, "reference": self.reference,
                "createdAt": self.created_at.isoformat(timespec="milliseconds")
                .replace("+00:00", "Z")}


async def find_entry(db: Any, user_id: ObjectId, idempotency_key: str) -> LedgerEntry | None:
    """Return the written entry for (user, idempotency key), or None."""
    doc = await db[TRANSACTIONS].find_one(
        {"user_id": user_id, "idempotency_key": idempotency_key})
    return LedgerEntry.from_doc(doc) if doc else None


async def list_entries(db: Any, user_id: ObjectId, *, limit: int,
                       before_seq: int | None = None,
                       type: str | None = None) -> list[LedgerEntry]:
    """Return up to `limit` entries newest first, strictly older than `before_seq`."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise ValueError("limit must be an int in 1..1000")
    if before_seq is not None and (isinstance(before_seq, bool) or not isinstance(before_seq, int)):
        raise ValueError("before_seq must be an int")
    query: dict[str, Any] = {"user_id": user_id}
    if before_seq is not None:
        query["seq"] = {"$lt": before_seq}
    if type is not None:
        query["type"] = type
    docs = await db[TRANSACTIONS].find(query).sort("seq", DESCENDING) \
        .limit(limit).to_list(limit)
    return [LedgerEntry.from_doc(doc) for doc in docs]
