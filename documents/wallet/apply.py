"""Ledger apply step: change a wallet and record the op in ONE atomic update.

This is steps 1-4 of the design in `documents.wallet.ledger` (pre-check, apply,
flush, filter failure).  It reports outcomes instead of raising, so that the
ledger's public exceptions can live in `documents.wallet.ledger` alone; exceptions
raised by a caller's `Plan` (e.g. InsufficientPoints) pass straight through.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson import ObjectId
from bson.errors import BSONError
from pymongo import ReturnDocument
from pymongo.errors import PyMongoError

from documents.wallet.entries import USERS, LedgerEntry, find_entry
from documents.wallet.outbox import SNAPSHOT_PROJECTION, flush_user, settle_outbox, write_settled

log = logging.getLogger(__name__)

# Only has to cover ops landing between one call's pre-check and its update;
# 1000 {k: 16-char hash, at: date} items cost about 50 kB of user document.
RECENT_MAX = 1000
MAX_ATTEMPTS = 100

USER_NOT_FOUND = "user_not_found"
UNWRITTEN = "unwritten"
CONTENTION = "contention"


@dataclass(frozen=True)
class Attempt:
    """What one apply attempt does: signed amount, extra filter, ledger meta."""

    amount: int
    guard: dict[str, Any]
    meta: dict[str, Any]


# Called with None first, then with the re-read wallet ({"points": {...}})
# after an attempt whose filter did not match; may raise to stop.
Plan = Callable[[dict[str, Any] | None], Awaitable[Attempt]]


@dataclass(frozen=True)
class Outcome:
    """Entry the key maps to and whether it existed before; or a problem name."""

    entry: LedgerEntry | None
    replayed: bool
    problem: str | None = None


def key_hash(idempotency_key: str) -> str:
    """Return the short hash of a key kept in `points.recent`."""
    digest = hashlib.blake2b(idempotency_key.encode(), digest_size=12).digest()
    return base64.urlsafe_b64encode(digest).decode()  # 96 bits, 16 chars


async def apply_once(db: Any, user_id: ObjectId, key: str, type: str, plan: Plan, *,
                     reference: str | None, meta: dict[str, Any],
                     now: datetime) -> Outcome:
    """Apply one op at most once per (user, key) and write its entry."""
    existing = await find_entry(db, user_id, key)
    if existing is not None:
        return Outcome(existing, replayed=True)
    users = db[USERS]
    khash = key_hash(key)
    entry_id = ObjectId()  # fixed across retries so flushers agree on identity
    state: dict[str, Any] | None = None
    for _ in range(MAX_ATTEMPTS):
        attempt = await plan(state)
        pending = {"_id": entry_id, "type": type, "amount": attempt.amount,
                   "idempotency_key": key, "reference": reference,
                   "meta": {**meta, **attempt.meta}, "created_at": now}
        snapshot = await users.find_one_and_update(
            {"_id": user_id, "points.recent.k": {"$ne": khash},
             "points.outbox.idempotency_key": {"$ne": key}, **attempt.guard},
            {"$inc": {"points.balance": attempt.amount, "points.seq": 1},
             "$push": {"points.recent": {"$each": [{"k": khash, "at": now}],
                                         "$slice": -RECENT_MAX},
                       "points.outbox": pending},
             "$set": {"points.updated_at": now},
             "$min": {"points.pending_since": now}},
            projection=SNAPSHOT_PROJECTION, return_document=ReturnDocument.AFTER)
        if snapshot is not None:
            settled = settle_outbox(user_id, snapshot["points"])
            try:
                await write_settled(db, user_id, settled)
            except (PyMongoError, BSONError, UnicodeError):
                # The op is applied and durable in the outbox; the next op on
                # this user or repair_pending writes the entry.  Failing here
                # would only make the caller retry into a replay.  (An earlier
                # entry the store refuses, left by older code, blocks the outbox:
                # repair_pending reports that user; this op still succeeded.)
                log.warning("ledger: entry %s of user %s left in the outbox",
                            entry_id, user_id, exc_info=True)
            return Outcome(next(e for e in settled if e.id == entry_id), replayed=False)
        applied = await users.find_one(
            {"_id": user_id, "$or": [{"points.recent.k": khash},
                                     {"points.outbox.idempotency_key": key}]}, {"_id": 1})
        if applied is not None:
            # Someone else applied this key, maybe then crashed: finish their write.
            await flush_user(db, user_id)
            existing = await find_entry(db, user_id, key)
            return Outcome(existing, replayed=True,
                           problem=None if existing else UNWRITTEN)
        state = await users.find_one({"_id": user_id}, {"points.balance": 1})
        if state is None:
            return Outcome(None, replayed=False, problem=USER_NOT_FOUND)
    return Outcome(None, replayed=False, problem=CONTENTION)
