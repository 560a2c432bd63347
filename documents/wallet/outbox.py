"""Ledger outbox flush: turn applied-but-unwritten ops into `transactions` entries.

Every balance change pushes its pending entry onto ``users.points.outbox`` in
the same atomic update that changes the balance (see `documents.wallet.ledger`).
Flushing reads one wallet snapshot (balance, seq and outbox come from one
document, so they are mutually consistent), settles it and writes it:

* `settle_outbox`: entry i gets ``balance_after = balance - sum(amounts of
  later outbox entries)`` and ``seq = seq - (number of later outbox entries)``.
  This is exact because the outbox always holds every applied-but-unwritten op
  in application order and flushing only ever removes a prefix.  Two flushers
  working from different snapshots therefore compute identical entries.
* `write_settled`: inserts the entries in order (a duplicate key means another
  runner already wrote that entry), then ``$pull``s exactly the written ids
  and clears ``points.pending_since`` only if the outbox is empty at that
  moment.
* `flush_user` / `repair_users`: finish a crashed predecessor's outbox; a user
  whose outbox cannot be written is reported and skipped, the others repaired.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError, PyMongoError

from documents.common import bson_now
from documents.wallet.entries import TRANSACTIONS, USERS, LedgerEntry
from documents.wallet.notices import record_entries

log = logging.getLogger(__name__)

# Only the wallet fields needed to settle the outbox; `points.recent` can hold
# ~1000 items and must never be shipped around on the hot path.
SNAPSHOT_PROJECTION = {"points.balance": 1, "points.seq": 1, "points.outbox": 1}


def settle_outbox(user_id: ObjectId, points: dict[str, Any]) -> list[LedgerEntry]:
    """Give every outbox entry of a wallet snapshot its final seq and balance_after."""
    balance = points.get("balance", 0)
    seq = points.get("seq", 0)
    settled: list[LedgerEntry] = []
    for pending in reversed(points.get("outbox") or []):
        settled.append(LedgerEntry.from_doc(
            {**pending, "user_id": user_id, "seq": seq, "balance_after": balance}))
        balance -= pending["amount"]
        seq -= 1
    settled.reverse()
    return settled


async def _insert(db: Any, entry: LedgerEntry) -> bool | None:
    """Insert one settled entry: True if we wrote it, False if already stored, None if blocked."""
    txs = db[TRANSACTIONS]
    try:
        await txs.insert_one(entry.to_doc())
        return True
    except DuplicateKeyError:
        pass
    if await txs.find_one({"_id": entry.id}, {"_id": 1}):
        return False  # a concurrent flusher wrote this very entry
    twin = await txs.find_one({"user_id": entry.user_id,
                               "idempotency_key": entry.idempotency_key}, {"_id": 1})
    if twin is None:
        log.error("ledger: seq %s of user %s is taken by another entry; outbox "
                  "left for an operator", entry.seq, entry.user_id)
        return None
    # The key had aged out of `points.recent` while a slow call sat between its
    # pre-check and its update, so the op was applied twice.  Record the second
    # application under a derived key so the ledger still sums to the balance
    # and an admin can issue a correcting entry.
    log.error("ledger: key %r applied twice for user %s (entry %s duplicates %s)",
              entry.idempotency_key, entry.user_id, entry.id, twin["_id"])
    doc = entry.to_doc()
    doc["idempotency_key"] = f"{entry.idempotency_key}#dup:{entry.id}"
    doc["meta"] = {**entry.meta, "duplicate_of": twin["_id"]}
    try:
        await txs.insert_one(doc)
    except DuplicateKeyError:
        return False if await txs.find_one({"_id": entry.id}, {"_id": 1}) else None
    return True


async def write_settled(db: Any, user_id: ObjectId, settled: list[LedgerEntry]) -> int:
    """Write settled entries in order, pull them from the outbox; return how many we inserted."""
    if not settled:
        return 0
    ids = [entry.id for entry in settled]
    found = await db[TRANSACTIONS].find({"_id": {"$in": ids}}, {"_id": 1}) \
        .limit(len(ids)).to_list(len(ids))
    stored = {doc["_id"] for doc in found}
    written: list[ObjectId] = []
    inserted = 0
    for entry in settled:
        if entry.id not in stored:
            outcome = await _insert(db, entry)
            if outcome is None:
                break  # later entries must never land before this one
            inserted += int(outcome)
        written.append(entry.id)
    if not written:
        return 0
    # Events of these entries are recorded before the entries leave the outbox (see `documents.wallet.notices`).
    await record_entries(db, user_id, settled[:len(written)])
    after = await db[USERS].find_one_and_update(
        {"_id": user_id}, {"$pull": {"points.outbox": {"_id": {"$in": written}}}},
        projection={"points.outbox._id": 1}, return_document=ReturnDocument.AFTER)
    if after is not None and not after.get("points", {}).get("outbox"):
        await clear_pending_flag(db, user_id)
    return inserted


async def clear_pending_flag(db: Any, user_id: ObjectId) -> None:
    """Unset `points.pending_since` if (and only if) the outbox is empty right now."""
    # The $size filter makes this safe against an op that pushed meanwhile:
    # that op's update set the flag again atomically with its push.
    await db[USERS].update_one(
        {"_id": user_id, "points.outbox": {"$size": 0},
         "points.pending_since": {"$exists": True}},
        {"$unset": {"points.pending_since": ""}})


async def flush_user(db: Any, user_id: ObjectId) -> int:
    """Write every pending outbox entry of one user; return how many this call inserted."""
    snapshot = await db[USERS].find_one({"_id": user_id}, SNAPSHOT_PROJECTION)
    if snapshot is None:
        return 0
    points = snapshot.get("points") or {}
    if not points.get("outbox"):
        await clear_pending_flag(db, user_id)  # a crash after the pull left it set
        return 0
    return await write_settled(db, user_id, settle_outbox(user_id, points))


@dataclass
class RepairReport:
    """What one repair pass did: entries written, and the users it could not repair (id -> reason)."""

    written: int = 0
    skipped: dict[ObjectId, str] = field(default_factory=dict)


async def repair_users(db: Any, *, older_than: timedelta = timedelta(0),
                       now: datetime | None = None, batch: int = 100) -> RepairReport:
    """Flush every user whose outbox has been pending for at least `older_than`, one user's failure isolated."""
    cutoff = bson_now(now) - older_than
    report = RepairReport()
    last_id: ObjectId | None = None
    while True:
        query: dict[str, Any] = {"points.pending_since": {"$lte": cutoff}}
        if last_id is not None:
            # Paging by _id keeps a user that never drains (constant traffic)
            # from trapping the job in a loop.
            query["_id"] = {"$gt": last_id}
        page = await db[USERS].find(query, {"_id": 1}).sort("_id", ASCENDING) \
            .limit(batch).to_list(batch)
        for doc in page:
            try:
                report.written += await flush_user(db, doc["_id"])
            except PyMongoError:
                raise  # the database itself is failing: no later user would fare better
            except Exception as exc:
                # An entry the store refuses (a lone surrogate written by older code, say) or a malformed
                # wallet must not stop the users after it.
                report.skipped[doc["_id"]] = f"{type(exc).__name__}: {exc}"
        if len(page) < batch:
            return report
        last_id = page[-1]["_id"]


async def repair_pending(db: Any, *, older_than: timedelta = timedelta(0),
                         now: datetime | None = None, batch: int = 100) -> int:
    """Flush every user whose outbox has been pending for at least `older_than`; return entries inserted."""
    return (await repair_users(db, older_than=older_than, now=now, batch=batch)).written
