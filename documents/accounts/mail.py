"""The `mail_outbox` collection: e-mails queued durably, delivered by the request that queued them or the job.

Document shape (Compass)::

    {_id, user_id | null, to, kind, subject, sealed (AES-GCM body: text, html, links; null once sent),
     status: "pending" | "sent" | "dead", attempts, next_attempt_at, last_error, created_at, sent_at,
     dead_at, purge_at}

A delivery first claims the mail (one conditional update pushes `next_attempt_at` a lease ahead and
counts the attempt), so the inline attempt and the job never send the same mail at the same time; a
process that dies mid-send leaves the claim to expire and the job sends it again (delivery is at least
once: a duplicate mail is harmless, a lost reset link is not). Failures wait out an exponential
backoff; after MAIL_MAX_ATTEMPTS the mail is `dead`. Sent and dead mails are purged after a while.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, IndexModel, ReturnDocument

from documents.common import backoff

COLLECTION = "mail_outbox"
CLAIM_LEASE = timedelta(minutes=2)
FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY = timedelta(hours=1)
KEEP_SENT = timedelta(days=7)
KEEP_DEAD = timedelta(days=30)
INDEXES = {
    COLLECTION: [
        IndexModel([("status", ASCENDING), ("next_attempt_at", ASCENDING)], name="due"),
        IndexModel([("user_id", ASCENDING)], name="user_mail"),
        IndexModel([("purge_at", ASCENDING)], expireAfterSeconds=0, name="purge_ttl"),
    ]
}


def retry_after(attempts: int) -> timedelta:
    """Wait before the next attempt after `attempts` failed ones: 30 s doubling, at most an hour."""
    return backoff(attempts - 1, first=FIRST_RETRY, cap=MAX_RETRY)


async def enqueue(db: Any, *, user_id: ObjectId | None, to: str, kind: str, subject: str, sealed: str,
                  now: datetime) -> dict:
    """Store a mail as pending and due now; returns the document."""
    doc = {"_id": ObjectId(), "user_id": user_id, "to": to, "kind": kind, "subject": subject, "sealed": sealed,
           "status": "pending", "attempts": 0, "next_attempt_at": now, "last_error": None, "created_at": now,
           "sent_at": None, "dead_at": None, "purge_at": None}
    await db[COLLECTION].insert_one(doc)
    return doc


async def claim(db: Any, now: datetime, mail_id: ObjectId | None = None) -> dict | None:
    """Take one due pending mail (this one, or the oldest due) for an attempt; None when nothing is due."""
    query: dict[str, Any] = {"status": "pending", "next_attempt_at": {"$lte": now}}
    if mail_id is not None:
        query["_id"] = mail_id
    return await db[COLLECTION].find_one_and_update(
        query, {"$set": {"next_attempt_at": now + CLAIM_LEASE}, "$inc": {"attempts": 1}},
        sort=[("next_attempt_at", ASCENDING)], return_document=ReturnDocument.AFTER,
    )


async def mark_sent(db: Any, doc: dict, now: datetime) -> None:
    """The attempt delivered: erase the body and keep the record for a week."""
    await db[COLLECTION].update_one(
        {"_id": doc["_id"], "status": "pending"},
        {"$set": {"status": "sent", "sealed": None, "sent_at": now, "last_error": None, "purge_at": now + KEEP_SENT}},
    )


async def mark_failed(db: Any, doc: dict, now: datetime, error: str, max_attempts: int) -> str:
    """The attempt failed: back off, or give up after `max_attempts`; returns the new status."""
    if doc["attempts"] >= max_attempts:
        await db[COLLECTION].update_one(
            {"_id": doc["_id"], "status": "pending"},
            {"$set": {"status": "dead", "sealed": None, "last_error": error, "dead_at": now,
                      "purge_at": now + KEEP_DEAD}},
        )
        return "dead"
    await db[COLLECTION].update_one(
        {"_id": doc["_id"], "status": "pending"},
        {"$set": {"next_attempt_at": now + retry_after(doc["attempts"]), "last_error": error}},
    )
    return "pending"


async def forget_user(db: Any, user_id: ObjectId) -> int:
    """Delete every mail of an account (its address is personal data); returns how many."""
    result = await db[COLLECTION].delete_many({"user_id": user_id})
    return result.deleted_count
