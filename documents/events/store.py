"""Outbound events to the app's own backend: the `events` collection, one document per event with its deliveries.

An event is written only from the durable record of the change that caused it (a ledger entry as it
leaves the wallet's outbox, a subscription's stored history, a recomputed entitlement), under an id
derived from that record (`event_id(key)`), with `$setOnInsert`: whoever writes it again after a crash
or a replayed webhook writes nothing new. Without EVENTS_WEBHOOK_URLS nothing is stored (`enable` is
never called for the database).

Document shape::

    {_id: "evt_<24 hex>", key, type, user_id, sandbox, data, created_at, order (ns, per-user delivery order),
     pending: [endpoint keys not yet delivered or dead], dead: [endpoint keys whose delivery is dead],
     deliveries: {<endpoint key>: {url, status: pending|delivered|dead, attempts, next_at, last_error,
                                   last_status, delivered_at}}}
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from core.metrics import EVENTS_CREATED
from documents.common import bson_now, utc

COLLECTION = "events"
INDEXES = {
    COLLECTION: [
        IndexModel([("pending", ASCENDING), ("order", ASCENDING)], name="pending_order"),
        IndexModel([("user_id", ASCENDING), ("order", ASCENDING)], name="user_order"),
        IndexModel([("created_at", ASCENDING)], name="created"),
        IndexModel([("dead", ASCENDING)], sparse=True, name="dead"),
    ]
}
TYPES = ("purchase.credited", "purchase.revoked", "subscription.started", "subscription.renewed",
         "subscription.cancelled", "subscription.expired", "subscription.revoked", "entitlement.changed",
         "points.changed")


@dataclass(frozen=True)
class Endpoint:
    """One receiver URL and the short key its delivery state is stored under."""

    key: str
    url: str


def endpoint(url: str) -> Endpoint:
    """The endpoint of a URL (its key is stable while the URL is unchanged)."""
    return Endpoint("e" + hashlib.sha256(url.encode()).hexdigest()[:12], url)


# Databases events are recorded for, by identity: set by `core.events_wiring` when URLs are configured.
_ENABLED: dict[int, tuple[Endpoint, ...]] = {}


def enable(db: Any, urls: tuple[str, ...]) -> None:
    """Record events written through `db` for these receiver URLs."""
    _ENABLED[id(db)] = tuple(endpoint(u) for u in urls)


def disable(db: Any) -> None:
    """Stop recording events for `db` (process shutdown)."""
    _ENABLED.pop(id(db), None)


def endpoints(db: Any) -> tuple[Endpoint, ...]:
    """The receivers events of `db` go to; empty when events are off."""
    return _ENABLED.get(id(db), ())


def event_id(key: str) -> str:
    """The event id derived from the key of the change that caused it (same change, same id, forever)."""
    return "evt_" + hashlib.sha256(key.encode()).hexdigest()[:24]


async def record(db: Any, key: str, type: str, user_id: ObjectId, *, sandbox: bool, data: dict,
                 created_at: datetime | None = None) -> bool:
    """Store an event once per key with a pending delivery per endpoint; True if this call created it."""
    targets = endpoints(db)
    if not targets:
        return False
    if type not in TYPES:
        raise ValueError(f"unknown event type {type!r}")
    doc = {"key": key, "type": type, "user_id": user_id, "sandbox": bool(sandbox), "data": data,
           "created_at": bson_now(created_at), "order": time.time_ns(), "pending": [t.key for t in targets],
           "deliveries": {t.key: {"url": t.url, "status": "pending", "attempts": 0, "next_at": bson_now(created_at),
                                  "last_error": None, "last_status": None, "delivered_at": None} for t in targets}}
    try:
        result = await db[COLLECTION].update_one({"_id": event_id(key)}, {"$setOnInsert": doc}, upsert=True)
    except DuplicateKeyError:
        return False  # a concurrent writer inserted the very same event
    created = result.upserted_id is not None
    if created:
        EVENTS_CREATED.labels(type).inc()
    return created


def iso(value: datetime | None) -> str | None:
    """ISO-8601 UTC with milliseconds and 'Z' (the API's date format)."""
    return None if value is None else utc(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def envelope(doc: dict) -> dict:
    """What a receiver gets: {id, type, createdAt, userId, sandbox, data}."""
    return {"id": doc["_id"], "type": doc["type"], "createdAt": iso(doc["created_at"]), "userId": str(doc["user_id"]),
            "sandbox": bool(doc.get("sandbox")), "data": doc.get("data") or {}}


async def find_event(db: Any, eid: str) -> dict | None:
    """One stored event by id."""
    return await db[COLLECTION].find_one({"_id": eid})


async def pending_heads(db: Any, key: str, max_users: int, page: int = 200) -> list[dict]:
    """Per user, the oldest event not yet delivered (nor dead) to an endpoint: what may be sent next.

    Pages skip users already seen, so one user's backlog never hides the other users' events.
    """
    heads: dict[Any, dict] = {}
    while len(heads) < max_users:
        query: dict[str, Any] = {"pending": key}
        if heads:
            query["user_id"] = {"$nin": list(heads)}
        docs = await db[COLLECTION].find(query).sort("order", ASCENDING).limit(page).to_list(page)
        for doc in docs:
            heads.setdefault(doc["user_id"], doc)
        if len(docs) < page:
            break
    return list(heads.values())


async def mark_delivered(db: Any, eid: str, key: str, status: int, now: datetime) -> None:
    """Record a 2xx answer: the delivery is done."""
    await db[COLLECTION].update_one({"_id": eid, "pending": key}, {
        "$set": {f"deliveries.{key}.status": "delivered", f"deliveries.{key}.delivered_at": now,
                 f"deliveries.{key}.last_status": status, f"deliveries.{key}.last_error": None},
        "$inc": {f"deliveries.{key}.attempts": 1}, "$pull": {"pending": key}})


async def mark_failed(db: Any, doc: dict, key: str, error: str, status: int | None, now: datetime,
                      schedule: tuple[float, ...]) -> bool:
    """Record a failed attempt: retry after the schedule's next delay, or dead-letter; True when now dead."""
    attempts = int(doc["deliveries"][key].get("attempts") or 0) + 1
    fields = {f"deliveries.{key}.attempts": attempts, f"deliveries.{key}.last_error": error[:300],
              f"deliveries.{key}.last_status": status}
    if attempts > len(schedule):
        await db[COLLECTION].update_one({"_id": doc["_id"], "pending": key},
                                        {"$set": fields | {f"deliveries.{key}.status": "dead"}, "$pull": {"pending": key},
                                         "$addToSet": {"dead": key}})
        return True
    fields[f"deliveries.{key}.next_at"] = now + timedelta(seconds=schedule[attempts - 1])
    await db[COLLECTION].update_one({"_id": doc["_id"], "pending": key}, {"$set": fields})
    return False


async def replay(db: Any, eid: str | None, now: datetime) -> int:
    """Send dead events again from the start of the schedule (one by id, or all); how many were revived."""
    # `dead` holds the keys of dead deliveries; the sparse `dead` index finds the documents with any.
    query: dict[str, Any] = {"dead": {"$exists": True, "$ne": []}} | ({} if eid is None else {"_id": eid})
    revived = 0
    async for doc in db[COLLECTION].find(query, {"deliveries": 1}):
        for key, state in (doc.get("deliveries") or {}).items():
            if state.get("status") != "dead":
                continue
            result = await db[COLLECTION].update_one(
                {"_id": doc["_id"], f"deliveries.{key}.status": "dead"},
                {"$set": {f"deliveries.{key}.status": "pending", f"deliveries.{key}.attempts": 0,
                          f"deliveries.{key}.next_at": now}, "$addToSet": {"pending": key}, "$pull": {"dead": key}})
            revived += result.modified_count
    return revived


async def list_deliveries(db: Any, url: str | None, status: str | None, limit: int) -> list[dict]:
    """Deliveries per endpoint, newest first: event id, type, user, endpoint, status, attempts, last error."""
    key = endpoint(url).key if url else None
    query: dict[str, Any] = {f"deliveries.{key}": {"$exists": True}} if key else {}
    if status in ("pending", "dead"):  # both have an indexed list of endpoint keys
        query[status] = key if key else {"$exists": True, "$ne": []}
    elif status:
        query[f"deliveries.{key}.status" if key else "deliveries"] = status if key else {"$exists": True}
    rows = []
    async for doc in db[COLLECTION].find(query).sort("order", -1).limit(limit):
        for k, state in (doc.get("deliveries") or {}).items():
            if (key and k != key) or (status and state.get("status") != status):
                continue
            rows.append({"eventId": doc["_id"], "type": doc["type"], "userId": str(doc["user_id"]),
                         "endpoint": state.get("url"), "status": state.get("status"), "attempts": state.get("attempts"),
                         "lastStatus": state.get("last_status"), "lastError": state.get("last_error"),
                         "createdAt": str(doc["created_at"])})
    return rows


async def oldest_undelivered(db: Any, keys: list[str]) -> datetime | None:
    """When the oldest event still waiting for any of these endpoints was created (one pending_order lookup each)."""
    oldest = None
    for key in keys:
        doc = await db[COLLECTION].find_one({"pending": key}, {"created_at": 1}, sort=[("order", 1)])
        if doc is not None and (oldest is None or doc["created_at"] < oldest):
            oldest = doc["created_at"]
    return oldest
