"""The `generations` collection: paid AI greetings with an exactly-once charge and refund.

Document (as admins see it in Compass; dates are UTC)::

    {_id, user_id, idempotency_key, request_hash, kind: "greeting" | "card", provider,
     request: {occasion, recipient_name, tone, language, details}, cost,
     status: "pending" | "completed" | "failed", created_at, updated_at,
     spend: {entry_id, balance_after},                     # completed
     result: {text, title, model, image: bool}, completed_at,
     failure: {reason, retryable}, failed_at,               # failed
     refund_due_since,                                      # failed, until `refund` is settled
     refund: {amount, entry_id | null, balance_after}}

`generation_images` holds a card's PNG as `{_id: generation id, user_id, png: <bytes>, ...}`
(GridFS would suit bigger files, but mongomock, which the tests and development use, lacks it).

State machine: pending -> completed | failed, each move one conditional update filtered on
`status: pending`, so whoever moves first wins and a late provider answer cannot resurrect a
generation the repair job failed.  Ledger keys come from the generation id (`gen:<id>` spends,
`genrefund:<id>` refunds), so every path that charges or refunds does it at most once, and
(user_id, idempotency_key) is unique, so one client key maps to one generation forever.

Crash analysis (see `repair_generations`): before the insert nothing exists; between insert and
spend the generation is pending with no charge; after the spend it is pending and charged; after
`fail_generation` it is failed with `refund_due_since` set.  The repair job fails pending
generations older than its cutoff and settles every refund that is due, so each crash ends with
the points back.  The ledger's `credit` refuses a caller-supplied `meta.corrects`, so a refund
points at its spend entry through `meta.corrects`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from bson import Binary, ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError, PyMongoError

from documents import wallet
from documents.common import DomainError, NotFound, bson_now, utc

COLLECTION = "generations"
IMAGES = "generation_images"
PENDING, COMPLETED, FAILED = "pending", "completed", "failed"
# A spend still in flight when the job failed its generation can land this late at most.
NO_CHARGE_GRACE = timedelta(hours=1)
# A live request settles its own refund within milliseconds; the job only picks up leftovers.
REFUND_SETTLE = timedelta(seconds=30)

INDEXES: dict[str, list[IndexModel]] = {
    COLLECTION: [
        IndexModel([("user_id", ASCENDING), ("idempotency_key", ASCENDING)], unique=True,
                   name="user_idempotency_key"),
        IndexModel([("user_id", ASCENDING), ("_id", DESCENDING)], name="user_history"),
        IndexModel([("status", ASCENDING), ("created_at", ASCENDING)], name="status_created"),
        # Present only while a refund is owed, so the index stays tiny.
        IndexModel([("refund_due_since", ASCENDING)], sparse=True, name="refund_due"),
    ],
    # Account deletion removes a user's postcards by owner.
    IMAGES: [IndexModel([("user_id", ASCENDING)], name="user_images")],
}


class GenerationKeyMismatch(DomainError):
    """The idempotency key was already used for a different generation request."""

    reason = "idempotency_key_mismatch"


class GenerationNotFound(NotFound):
    """No such generation for this user."""

    reason = "generation_not_found"


def spend_key(generation_id: ObjectId) -> str:
    """Return the ledger key of a generation's charge."""
    return f"gen:{generation_id}"


def refund_key(generation_id: ObjectId) -> str:
    """Return the ledger key of a generation's refund."""
    return f"genrefund:{generation_id}"


def request_hash(kind: str, request: dict[str, Any]) -> str:
    """Return a stable hash of a generation request (detects a reused key with another body)."""
    canonical = json.dumps({"kind": kind, **request}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def start_generation(db: Any, user_id: ObjectId, key: str, kind: str, request: dict[str, Any],
                           cost: int, provider: str, now: datetime) -> tuple[dict, bool]:
    """Insert a pending generation for (user, key); return (doc, created) or the existing one."""
    digest = request_hash(kind, request)
    now = bson_now(now)
    doc = {"_id": ObjectId(), "user_id": user_id, "idempotency_key": key, "request_hash": digest,
           "kind": kind, "provider": provider, "request": request, "cost": cost, "status": PENDING,
           "created_at": now, "updated_at": now}
    try:
        await db[COLLECTION].insert_one(doc)
        return doc, True
    except DuplicateKeyError:
        existing = await db[COLLECTION].find_one({"user_id": user_id, "idempotency_key": key})
    if existing is None:  # withdrawn after a 402 between our insert and our read: a fresh start is fine
        return await start_generation(db, user_id, key, kind, request, cost, provider, now)
    if existing["request_hash"] != digest:
        raise GenerationKeyMismatch("This Idempotency-Key was already used for a different request.")
    return existing, False


async def charge(db: Any, gen: dict, now: datetime) -> wallet.LedgerResult:
    """Take the generation's cost; on InsufficientPoints withdraw it so the key can be retried."""
    try:
        return await wallet.debit(db, gen["user_id"], gen["cost"], "spend", spend_key(gen["_id"]),
                                  reference=f"generation:{gen['_id']}", now=now)
    except wallet.InsufficientPoints:
        await db[COLLECTION].delete_one({"_id": gen["_id"], "status": PENDING})
        raise


async def complete_generation(db: Any, gen: dict, result: dict[str, Any], spend: wallet.LedgerResult,
                              now: datetime) -> dict | None:
    """Move pending -> completed with the result; None if the generation is no longer pending."""
    now = bson_now(now)
    return await db[COLLECTION].find_one_and_update(
        {"_id": gen["_id"], "status": PENDING},
        {"$set": {"status": COMPLETED, "result": result, "completed_at": now, "updated_at": now,
                  "spend": {"entry_id": spend.entry.id, "balance_after": spend.entry.balance_after}}},
        return_document=ReturnDocument.AFTER)


async def fail_generation(db: Any, generation_id: ObjectId, reason: str, retryable: bool,
                          now: datetime) -> dict | None:
    """Move pending -> failed and mark its refund due; None if it is no longer pending."""
    now = bson_now(now)
    return await db[COLLECTION].find_one_and_update(
        {"_id": generation_id, "status": PENDING},
        {"$set": {"status": FAILED, "failure": {"reason": reason, "retryable": retryable},
                  "failed_at": now, "updated_at": now, "refund_due_since": now}},
        return_document=ReturnDocument.AFTER)


async def settle_refund(db: Any, gen: dict, now: datetime) -> tuple[dict, int]:
    """Give a failed generation's points back exactly once; return (doc, points credited by this call)."""
    if gen["status"] != FAILED or (gen.get("refund") or {}).get("entry_id"):
        return gen, 0
    uid, gid = gen["user_id"], gen["_id"]
    await wallet.flush_user(db, uid)  # an applied spend may still sit in the wallet's outbox
    spend = await wallet.find_entry(db, uid, spend_key(gid))
    credited = 0
    if spend is not None:
        result = await wallet.credit(db, uid, gen["cost"], "refund", refund_key(gid), reference=f"generation:{gid}",
                                     corrects=spend.id, now=now)
        credited = 0 if result.replayed else gen["cost"]
        refund = {"amount": gen["cost"], "entry_id": result.entry.id, "balance_after": result.entry.balance_after}
    elif gen.get("refund") or bson_now(now) - utc(gen["failed_at"]) < NO_CHARGE_GRACE:
        return gen, 0  # nothing charged (yet): keep the refund due in case a stalled spend lands
    else:
        refund = {"amount": 0, "entry_id": None, "balance_after": (await wallet.get_balance(db, uid)).balance}
    updated = await db[COLLECTION].find_one_and_update(
        {"_id": gid, "status": FAILED, "refund.entry_id": None},
        {"$set": {"refund": refund, "updated_at": bson_now(now)}, "$unset": {"refund_due_since": ""}},
        return_document=ReturnDocument.AFTER)
    return updated or await db[COLLECTION].find_one({"_id": gid}), credited


def answered_refund(gen: dict) -> dict:
    """Return the refund to report for a failed generation (zero while none is settled)."""
    return gen.get("refund") or {"amount": 0, "entry_id": None, "balance_after": None}


async def save_image(db: Any, gen: dict, png: bytes, size: tuple[int, int], now: datetime) -> None:
    """Store a card's PNG under the generation id (a retried save keeps the first)."""
    doc = {"_id": gen["_id"], "user_id": gen["user_id"], "content_type": "image/png", "png": Binary(png),
           "width": size[0], "height": size[1], "bytes": len(png), "created_at": bson_now(now)}
    try:
        await db[IMAGES].insert_one(doc)
    except DuplicateKeyError:
        pass


async def discard_image(db: Any, generation_id: ObjectId) -> None:
    """Delete a card image whose generation did not complete."""
    await db[IMAGES].delete_one({"_id": generation_id})


async def find_image(db: Any, user_id: ObjectId, generation_id: ObjectId) -> bytes | None:
    """Return the PNG of one of the user's completed cards, or None."""
    doc = await db[IMAGES].find_one({"_id": generation_id, "user_id": user_id}, {"png": 1})
    return bytes(doc["png"]) if doc else None


async def find_generation(db: Any, user_id: ObjectId, generation_id: Any) -> dict | None:
    """Return the user's generation with this id, or None (also for ids that are not ObjectIds)."""
    if not isinstance(generation_id, ObjectId):
        if not isinstance(generation_id, str) or not ObjectId.is_valid(generation_id):
            return None
        generation_id = ObjectId(generation_id)
    return await db[COLLECTION].find_one({"_id": generation_id, "user_id": user_id})


async def get_generation(db: Any, user_id: ObjectId, generation_id: Any) -> dict:
    """Return the user's generation with this id or raise GenerationNotFound."""
    gen = await find_generation(db, user_id, generation_id)
    if gen is None:
        raise GenerationNotFound("No such generation.")
    return gen


async def list_generations(db: Any, user_id: ObjectId, *, limit: int,
                           before_id: ObjectId | None = None) -> list[dict]:
    """Return up to `limit` of the user's generations newest first, older than `before_id`."""
    query: dict[str, Any] = {"user_id": user_id}
    if before_id is not None:
        query["_id"] = {"$lt": before_id}
    return await db[COLLECTION].find(query, {"request_hash": 0}).sort("_id", DESCENDING).limit(limit).to_list(limit)


async def repair_generations(db: Any, *, now: datetime, stale_after: timedelta, batch: int = 100) -> dict[str, Any]:
    """Fail generations pending longer than `stale_after` and settle every refund left due.

    A generation that cannot be repaired (its wallet refuses the refund, say) is skipped and its user listed in
    `skipped` (user id -> reason), so one bad user does not stop the repair of the others.
    """
    summary: dict[str, Any] = {"abandoned": 0, "refunds": 0, "points_refunded": 0, "abandoned_by_provider": {},
                               "skipped": {}}
    cutoff = bson_now(now) - stale_after
    stuck: list[ObjectId] = []  # pending generations that failed to repair, left out of the query that pages on
    while True:
        query: dict[str, Any] = {"status": PENDING, "created_at": {"$lte": cutoff}}
        if stuck:
            query["_id"] = {"$nin": stuck}
        page = await db[COLLECTION].find(query, {"provider": 1, "user_id": 1}) \
            .sort("created_at", ASCENDING).limit(batch).to_list(batch)
        for doc in page:
            try:
                await _abandon(db, doc, now, summary)
            except PyMongoError:
                raise
            except Exception as exc:
                stuck.append(doc["_id"])
                summary["skipped"][doc.get("user_id")] = f"{type(exc).__name__}: {exc}"
        if len(page) < batch:
            break  # every doc of a full page left `pending` (or is stuck), so the same query pages on
    last: ObjectId | None = None
    while True:
        query = {"refund_due_since": {"$lte": bson_now(now) - REFUND_SETTLE}}
        if last is not None:
            query["_id"] = {"$gt": last}  # refunds kept due (nothing charged yet) must not trap the loop
        page = await db[COLLECTION].find(query).sort("_id", ASCENDING).limit(batch).to_list(batch)
        for doc in page:
            if doc.get("user_id") in summary["skipped"]:
                continue  # already failed this run: reported once
            try:
                _, credited = await settle_refund(db, doc, now)
            except PyMongoError:
                raise
            except Exception as exc:
                summary["skipped"][doc.get("user_id")] = f"{type(exc).__name__}: {exc}"
                continue
            summary["refunds"] += int(credited > 0)
            summary["points_refunded"] += credited
        if len(page) < batch:
            return summary
        last = page[-1]["_id"]


async def _abandon(db: Any, doc: dict, now: datetime, summary: dict[str, Any]) -> None:
    # Conditional: a request that finishes right now keeps its result.
    failed = await fail_generation(db, doc["_id"], "abandoned", True, now)
    if failed is not None:
        summary["abandoned"] += 1
        by, provider = summary["abandoned_by_provider"], doc.get("provider", "unknown")
        by[provider] = by.get(provider, 0) + 1
        _, credited = await settle_refund(db, failed, now)
        summary["refunds"] += int(credited > 0)
        summary["points_refunded"] += credited
