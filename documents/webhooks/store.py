"""The `webhook_events` collection: one document per RuStore notification, its processing state and dead letters.

A notification is stored before RuStore gets its 200, under `_id = "real:<id>"` or
`"sandbox:<id>"` (the two environments number their notifications independently), so a
redelivery collides with the unique `_id` and has no second effect. Processing is claimed with
one conditional update that sets `status: processing` and a lease (`processing_until`), and
every later write about that attempt carries the claim token: the inline task and the retry job
never work on one event at once, and a crashed processor's claim simply runs out.

States::

    received -> processing -> processed                  (applied; purged RETENTION days later)
                           -> failed -> processing ...   (retried with exponential backoff + jitter)
                           -> dead                       (permanent error or WEBHOOK_MAX_ATTEMPTS used up)
    ignored                                              (a type we do not know; kept RETENTION days to inspect)

`next_attempt_at` is set exactly while someone may still have to act (received, failed, and
processing, where it equals the lease end), so "what is due" is one range query on a sparse index.
Retention: processed and ignored events get `expires_at` (90 days on) and the webhook-retry job
deletes them in bounded batches (`purge_expired`); failed and dead events are kept until handled.
A job rather than a TTL index: it runs on the app's clock (testable), and the embedded development
store (mongomock) re-scans a TTL collection for expired documents on every single operation.

Document shape (admins read it in Compass)::

    {_id, notification_id, type, sandbox, app_id, notification_timestamp, received_at, event: {...},
     status, attempts, next_attempt_at, processing_until, claim, last_error, result, processed_at,
     expires_at, requeued_at, updated_at}

`event` holds the decoded data; the legacy `purchase_token` (a credential for RuStore's P1
lookup) is stored only as `purchase_token_sha256`.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from documents.common import Conflict, NotFound, backoff
from rustore import InvoiceStatusEvent, Notification, SubscriptionEvent, TestEvent

COLLECTION = "webhook_events"
RECEIVED, PROCESSING, PROCESSED, FAILED, DEAD, IGNORED = (
    "received", "processing", "processed", "failed", "dead", "ignored")
CLAIMABLE = (RECEIVED, FAILED, PROCESSING)  # processing only once its lease ran out (next_attempt_at)
RETENTION = timedelta(days=90)  # far beyond RuStore's 36 h of redeliveries, long enough for support cases
LEASE = timedelta(minutes=2)  # a few RuStore calls, each bounded by RUSTORE_RETRY_DEADLINE_S (20 s)
RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=6)  # 10 attempts span ~8.5 h: a long RuStore outage does not dead-letter at once
ERROR_CHARS = 500
UNKNOWN_DATA_CHARS = 4000

INDEXES = {
    COLLECTION: [
        IndexModel([("next_attempt_at", ASCENDING)], sparse=True, name="next_attempt"),
        IndexModel([("status", ASCENDING), ("updated_at", DESCENDING)], name="status_recent"),
        IndexModel([("expires_at", ASCENDING)], sparse=True, name="retention"),
    ]
}


class WebhookEventNotFound(NotFound):
    """No stored notification has this id."""

    reason = "webhook_event_not_found"


class WebhookEventBusy(Conflict):
    """The notification is being processed right now."""

    reason = "webhook_event_busy"


def event_key(notification_id: str, sandbox: bool) -> str:
    """The `_id` of a notification: real and sandbox ids are separate namespaces."""
    return f"{'sandbox' if sandbox else 'real'}:{notification_id}"


def base_type(notification_type: str) -> str:
    """`INVOICE_STATUS_SANDBOX` -> `INVOICE_STATUS`."""
    return notification_type.upper().removesuffix("_SANDBOX")


def retry_delay(attempts: int, rng: Callable[[], float] = random.random) -> timedelta:
    """Wait after the `attempts`-th failure: 1, 2, 4 ... minutes capped at 6 h, each +-25% jitter."""
    return backoff(attempts - 1, first=RETRY_BASE, cap=RETRY_CAP, jitter=rng)


def _sha256(value: str | None) -> str | None:
    return hashlib.sha256(value.encode()).hexdigest() if value else None


def _value(item: Any) -> Any:
    return getattr(item, "value", item)


def event_data(note: Notification) -> dict[str, Any]:
    """What the notification said, for admins; secrets are hashed, unknown data kept as bounded JSON text."""
    event = note.event
    if isinstance(event, InvoiceStatusEvent):
        return {"invoice_id": event.invoice_id, "purchase_id": event.purchase_id, "order_id": event.order_id,
                "product_code": event.product_code, "status_new": _value(event.status_new),
                "status_old": _value(event.status_old), "change_status_time": event.change_status_time,
                "purchase_token_sha256": _sha256(event.purchase_token)}
    if isinstance(event, SubscriptionEvent):
        return {"purchase_id": event.purchase_id, "product_code": event.product_code,
                "event_type": _value(event.event_type), "status_new": _value(event.status_new),
                "status_old": _value(event.status_old), "period_new": event.period_new,
                "period_old": event.period_old, "auto_renewing": event.auto_renewing, "event_time": event.event_time,
                "invoice_id": event.invoice_id, "order_id": event.order_id,
                "developer_payload": event.developer_payload}
    data = event.data
    if isinstance(data, dict):
        data = {k: _sha256(str(v)) if "token" in str(k).lower() else v for k, v in data.items()}
    # As text: unknown keys may start with `$` or contain dots, which MongoDB field names refuse.
    return {"data_json": json.dumps(data, ensure_ascii=False, default=str)[:UNKNOWN_DATA_CHARS]}


def new_event(note: Notification, now: datetime) -> dict[str, Any]:
    """The document stored for a freshly received notification (test events are done, unknown types ignored)."""
    doc: dict[str, Any] = {
        "_id": event_key(note.id, note.sandbox), "notification_id": note.id, "type": note.notification_type,
        "sandbox": note.sandbox, "app_id": note.app_id, "notification_timestamp": note.timestamp,
        "received_at": now, "event": event_data(note), "attempts": 0, "last_error": None, "updated_at": now,
    }
    if isinstance(note.event, TestEvent):
        return doc | {"status": PROCESSED, "processed_at": now, "expires_at": now + RETENTION}
    if base_type(note.notification_type) not in ("INVOICE_STATUS", "SUBSCRIPTION_EVENT"):
        return doc | {"status": IGNORED, "processed_at": now, "expires_at": now + RETENTION}
    return doc | {"status": RECEIVED, "next_attempt_at": now}


async def record_event(db: Any, note: Notification, now: datetime) -> tuple[dict, bool]:
    """Store a notification once; returns (the stored document, True if this call created it)."""
    doc = new_event(note, now)
    try:
        await db[COLLECTION].insert_one(doc)
        return doc, True
    except DuplicateKeyError:
        existing = await db[COLLECTION].find_one({"_id": doc["_id"]})
        return existing or doc, False


async def claim_event(db: Any, event_id: str, now: datetime, lease: timedelta = LEASE) -> dict | None:
    """Take an event for one processing attempt (counts the attempt), or None if it is not ours to take."""
    return await db[COLLECTION].find_one_and_update(
        {"_id": event_id, "status": {"$in": list(CLAIMABLE)}, "next_attempt_at": {"$lte": now}},
        {"$set": {"status": PROCESSING, "claim": secrets.token_hex(8), "processing_until": now + lease,
                  "next_attempt_at": now + lease, "updated_at": now},
         "$inc": {"attempts": 1}},
        return_document=ReturnDocument.AFTER,
    )


async def _finish(db: Any, event: dict, changes: dict[str, Any], *, keep_due: bool = False) -> bool:
    """Write an attempt's result if the attempt still holds its claim; False when it lost it."""
    unset = {"claim": "", "processing_until": ""} | ({} if keep_due else {"next_attempt_at": ""})
    result = await db[COLLECTION].update_one({"_id": event["_id"], "claim": event["claim"]},
                                             {"$set": changes, "$unset": unset})
    return result.modified_count == 1


async def mark_processed(db: Any, event: dict, now: datetime, result: dict | None = None) -> bool:
    """The claimed attempt applied the event."""
    return await _finish(db, event, {"status": PROCESSED, "processed_at": now, "expires_at": now + RETENTION,
                                     "result": result or {}, "last_error": None, "updated_at": now})


async def mark_dead(db: Any, event: dict, now: datetime, error: str) -> bool:
    """The claimed attempt hit a permanent error (or the last attempt failed): keep it for admins."""
    return await _finish(db, event, {"status": DEAD, "last_error": error[:ERROR_CHARS], "dead_at": now,
                                     "updated_at": now})


async def mark_failed(db: Any, event: dict, now: datetime, error: str, *, max_attempts: int,
                      rng: Callable[[], float] = random.random, outage: bool = False) -> str | None:
    """Schedule a retry after a transient failure, or dead-letter it when attempts are used up.

    A failure caused by a RuStore-wide outage (`outage`) gives the attempt back: the backoff does not
    grow and no event is dead-lettered by an outage; the recovery pass retries it when RuStore answers.
    Returns the status written (`failed` or `dead`), or None when the attempt had lost its claim.
    """
    attempts = int(event.get("attempts") or 0) - int(outage)
    if attempts >= max_attempts:
        return DEAD if await mark_dead(db, event, now, error) else None
    retry_at = now + retry_delay(max(attempts, 1), rng)
    written = await _finish(db, event, {"status": FAILED, "last_error": error[:ERROR_CHARS], "attempts": max(attempts, 0),
                                        "next_attempt_at": retry_at, "updated_at": now}, keep_due=True)
    return FAILED if written else None


async def due_event_ids(db: Any, now: datetime, limit: int) -> list[str]:
    """Ids of events someone should process now (received, failed past backoff, or lease expired), oldest first."""
    cursor = db[COLLECTION].find({"next_attempt_at": {"$lte": now}}, {"_id": 1}).sort("next_attempt_at", ASCENDING)
    return [doc["_id"] for doc in await cursor.limit(limit).to_list(limit)]


async def purge_expired(db: Any, now: datetime, limit: int) -> int:
    """Delete up to `limit` processed/ignored events past their retention; returns how many."""
    cursor = db[COLLECTION].find({"expires_at": {"$lte": now}}, {"_id": 1}).limit(limit)
    ids = [doc["_id"] for doc in await cursor.to_list(limit)]
    if not ids:
        return 0
    # Re-checked in the delete: a requeue may have revived one of them since the read.
    result = await db[COLLECTION].delete_many({"_id": {"$in": ids}, "expires_at": {"$lte": now}})
    return result.deleted_count


async def find_event(db: Any, event_id: str) -> dict | None:
    """An event by `_id` ("real:123" / "sandbox:123") or by RuStore's bare id (real first), or None."""
    if ":" in event_id:
        return await db[COLLECTION].find_one({"_id": event_id})
    for sandbox in (False, True):
        doc = await db[COLLECTION].find_one({"_id": event_key(event_id, sandbox)})
        if doc is not None:
            return doc
    return None


async def backlog_counts(db: Any, now: datetime) -> tuple[int, int]:
    """(notifications due for processing now, dead letters): two index counts, for the backlog metrics."""
    due = await db[COLLECTION].count_documents({"next_attempt_at": {"$lte": now}})
    dead = await db[COLLECTION].count_documents({"status": DEAD})
    return due, dead


async def list_dead_events(db: Any, limit: int) -> list[dict]:
    """Dead letters, most recently failed first."""
    cursor = db[COLLECTION].find({"status": DEAD}).sort("updated_at", DESCENDING).limit(limit)
    return await cursor.to_list(limit)


async def requeue_event(db: Any, event_id: str, now: datetime) -> dict:
    """Make an event due again with fresh attempts (admin replay); raises NotFound, or Conflict while it runs."""
    doc = await find_event(db, event_id)
    if doc is None:
        raise WebhookEventNotFound(f"No stored RuStore notification {event_id!r}.")
    requeued = await db[COLLECTION].find_one_and_update(
        # A live claim is left alone; an expired one belonged to a processor that is gone.
        {"_id": doc["_id"], "$or": [{"status": {"$ne": PROCESSING}}, {"processing_until": {"$lte": now}}]},
        {"$set": {"status": RECEIVED, "attempts": 0, "next_attempt_at": now, "requeued_at": now, "updated_at": now},
         "$unset": {"claim": "", "processing_until": "", "expires_at": "", "dead_at": ""},
         "$inc": {"requeues": 1}},
        return_document=ReturnDocument.AFTER,
    )
    if requeued is None:
        raise WebhookEventBusy("This notification is being processed right now; try again in a few minutes.")
    return requeued
