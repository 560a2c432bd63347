"""Events derived from stored state by the delivery job: subscription cancelled/expired, entitlement changes.

Each pass looks at what changed since the previous pass (minus OVERLAP, so a write landing during a pass
is seen by the next): subscriptions updated or ending in that window, and users with new events or
updated purchases. Ids are derived from the stored change, so passes may overlap freely:

* `subscription.started` of trials and products without points (others come from their first grant);
* `purchase.credited` / `purchase.revoked` of non-consumables, from the purchase's stored state;
* `subscription.cancelled`: a stored history entry where the subscription stops renewing (CANCELLED, or
  auto-renewal off), keyed by subscription and period end;
* `subscription.expired`: a history entry EXPIRED, or an entitled one whose end passed, keyed the same way;
* `entitlement.changed`: the user's entitlements recomputed (`documents.entitlements.snapshot`) and compared with
  the last state announced (`entitlement_states`); the event is keyed by the state's version and written
  before the version moves, so a crash in between rewrites the same event.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId

from documents import events as events_doc
from documents.common import utc
from documents.entitlements.snapshot import customer_snapshot
from documents.subscriptions import COLLECTION as SUBSCRIPTIONS
from documents.subscriptions import ENTITLED
from documents.wallet import started_key

CURSORS = "event_cursors"
STATES = "entitlement_states"
OVERLAP = timedelta(minutes=5)


def _ms(value: datetime | None) -> int:
    return int(utc(value).timestamp() * 1000) if value else 0


def _sub_data(doc: Mapping[str, Any], end: datetime | None) -> dict:
    return {"purchaseId": doc.get("purchase_id"), "productId": doc.get("product_id"), "expiresAt": events_doc.iso(end)}


async def _subscription_events(db: Any, doc: dict, since: datetime, now: datetime) -> None:
    user, sandbox, sid = doc["user_id"], bool(doc.get("sandbox")), str(doc["_id"])
    previous: dict = {}
    first = next((h for h in doc.get("history") or [] if h.get("status") in ENTITLED), None)
    if first is not None and first.get("at") and utc(first["at"]) >= since:
        # Usually written already from the first paid period's grant (same key); this covers trials and
        # products without points_per_period.
        await events_doc.record(db, started_key(doc.get("purchase_id"), sandbox), "subscription.started", user,
                            sandbox=sandbox, data=_sub_data(doc, first.get("end_date")), created_at=first["at"])
    for h in doc.get("history") or []:
        stops = h.get("status") == "CANCELLED" or (h.get("status") == "ACTIVE" and h.get("auto_renewing") is False)
        stopped_before = previous.get("status") == "CANCELLED" or (
            previous.get("status") == "ACTIVE" and previous.get("auto_renewing") is False)
        fresh = h.get("at") is not None and utc(h["at"]) >= since
        if fresh and stops and not stopped_before:
            await events_doc.record(db, f"subscription.cancelled:{sid}:{_ms(h.get('end_date'))}", "subscription.cancelled",
                                user, sandbox=sandbox, data=_sub_data(doc, h.get("end_date")), created_at=h["at"])
        if fresh and h.get("status") == "EXPIRED" and previous.get("status") != "EXPIRED":
            await events_doc.record(db, f"subscription.expired:{sid}:{_ms(h.get('end_date'))}", "subscription.expired",
                                user, sandbox=sandbox, data=_sub_data(doc, h.get("end_date")), created_at=h["at"])
        previous = h
    end = doc.get("end_date")
    # A cancelled one ends by the clock with no answer from RuStore: its end is the event.
    if doc.get("status") in ENTITLED and end is not None and since <= utc(end) <= now and not doc.get("auto_renewing"):
        await events_doc.record(db, f"subscription.expired:{sid}:{_ms(end)}", "subscription.expired", user,
                            sandbox=sandbox, data=_sub_data(doc, end), created_at=utc(end))


NON_CONSUMABLE_EVENTS = {"paid": "purchase.credited", "confirmed": "purchase.credited",
                         "reversed": "purchase.revoked", "refunded": "purchase.revoked"}


async def _non_consumable_events(db: Any, since: datetime) -> set[ObjectId]:
    """Owned/lost non-consumables (they move no points, so no ledger entry announces them)."""
    users: set[ObjectId] = set()
    query = {"updated_at": {"$gte": since}, "user_id": {"$ne": None}}
    async for doc in db["purchases"].find(query, {"history": 0}):
        users.add(doc["user_id"])
        kind = NON_CONSUMABLE_EVENTS.get(doc.get("state") or "")
        if doc.get("product_type") != "non_consumable" or kind is None:
            continue
        data = {"invoiceId": doc.get("invoice_id"), "productId": doc.get("product_id"), "points": 0}
        if kind == "purchase.revoked":
            data = {"invoiceId": doc.get("invoice_id"), "productId": doc.get("product_id"),
                    "status": doc.get("rustore_status"), "pointsTakenBack": 0, "requested": 0, "shortfall": 0}
        await events_doc.record(db, f"{kind}:nc:{doc['_id']}", kind, doc["user_id"], sandbox=bool(doc.get("sandbox")),
                            data=data, created_at=doc.get("updated_at"))
    return users


async def announce_entitlements(db: Any, user_id: ObjectId, declared: Mapping[str, tuple[str, ...]],
                                now: datetime) -> int:
    """Record `entitlement.changed` for every entitlement whose active state differs from the last announced."""
    snapshot = await customer_snapshot(db, user_id, declared, now)
    if snapshot is None:
        return 0
    state = await db[STATES].find_one({"_id": user_id}) or {"version": 0, "active": {}}
    announced = dict(state.get("active") or {})
    version = int(state.get("version") or 0)
    changed = {n: e for n, e in snapshot["entitlements"].items() if bool(announced.get(n)) != e["active"]}
    if not changed:
        return 0
    sandbox = any(e["sandbox"] for e in changed.values())
    for name, ent in changed.items():
        await events_doc.record(db, f"entitlement.changed:{user_id}:{name}:{version + 1}", "entitlement.changed", user_id,
                            sandbox=sandbox, data={"entitlement": name, "change": "granted" if ent["active"] else "lost",
                                                   **ent}, created_at=now)
    new_state = announced | {n: e["active"] for n, e in changed.items()}
    await db[STATES].update_one({"_id": user_id, "version": version} if state.get("_id") else {"_id": user_id},
                                {"$set": {"active": new_state, "version": version + 1, "updated_at": now}},
                                upsert=not state.get("_id"))
    return len(changed)


async def sweep(db: Any, declared: Mapping[str, tuple[str, ...]], now: datetime) -> dict:
    """One derivation pass over what changed since the last one; counts of subscriptions and users looked at."""
    cursor = await db[CURSORS].find_one({"_id": "sweep"})
    since = (utc(cursor["at"]) if cursor else now) - OVERLAP
    seen = 0
    users: set[ObjectId] = set()
    async for doc in db[SUBSCRIPTIONS].find(
            {"user_id": {"$ne": None}, "$or": [{"updated_at": {"$gte": since}}, {"end_date": {"$gte": since, "$lte": now}}]},
            {"user_id": 1, "purchase_id": 1, "product_id": 1, "sandbox": 1, "status": 1, "end_date": 1,
             "auto_renewing": 1, "history": 1}):
        await _subscription_events(db, doc, since, now)
        users.add(doc["user_id"])
        seen += 1
    users |= await _non_consumable_events(db, since)
    users |= set(await db[events_doc.COLLECTION].distinct("user_id", {"created_at": {"$gte": since}}))
    changes = 0
    for user_id in users:
        changes += await announce_entitlements(db, user_id, declared, now)
    await db[CURSORS].update_one({"_id": "sweep"}, {"$set": {"at": now}}, upsert=True)
    return {"subscriptions_seen": seen, "users_seen": len(users), "entitlement_changes": changes}
