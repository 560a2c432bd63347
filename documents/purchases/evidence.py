"""Where a one-time purchase's purchaseId comes from, and which one confirms its two-step hold.

RuStore's published payment record (P3) has no purchaseId (API.md §13), yet P5 confirms a hold by
purchaseId. So every purchaseId we learn is stored with its source, in order of trust::

    rustore        RuStore's payment record, if it ever carries one
    notification   `purchase_id` of an authenticated INVOICE_STATUS notification for the invoice
    purchase_list  RuStore's purchase list by appUserId (GET .../applications/{appId}/purchases)
    claim          what the owner's app reported from the Pay SDK (never another account's claim)

The first three are RuStore's word and also prove possession for order-less claims (see
`billing.decide_owner`). The confirm candidate (`purchase_id`, `purchase_id_source`) is chosen only
once the purchase has an owner, so an unowned purchase never shows a purchaseId to a claimant. A
purchaseId P5 refused as "not found" (or that confirmed nothing) goes to `wrong_purchase_ids` and is
never tried again; a claimed one that RuStore reported for another invoice is never tried at all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ReturnDocument

from documents.common import upsert_unique
from documents.purchases.store import COLLECTION

REPORTED = ("rustore", "notification", "purchase_list")


def new_purchase(now: datetime) -> dict:
    """Fields of a purchase document first seen before RuStore's record was applied."""
    return {"user_id": None, "state": "pending", "rustore_status": None, "created_at": now, "history": [],
            "claims": [], "purchase_ids": {}, "wrong_purchase_ids": []}


async def upsert_purchase(db: Any, invoice_id: str, sandbox: bool, update: dict) -> dict:
    """Upsert the purchase of (invoice, sandbox), the unique key; a racing insert is found, not duplicated."""
    return await upsert_unique(db, COLLECTION, {"invoice_id": invoice_id, "sandbox": sandbox}, update)


async def note_purchase_id(db: Any, invoice_id: str, sandbox: bool, source: str, purchase_id: str,
                           now: datetime) -> dict:
    """Store a purchaseId RuStore reported for an invoice (creating the document if needed)."""
    assert source in REPORTED
    insert = new_purchase(now) | {"next_check_at": now}
    insert.pop("purchase_ids")  # written through the dotted path (the two would conflict)
    return await upsert_purchase(db, invoice_id, sandbox, {
        "$setOnInsert": insert, "$set": {f"purchase_ids.{source}": purchase_id, "updated_at": now},
    })


async def note_listed(db: Any, doc: dict, app_user_id: str, purchase_id: str | None, now: datetime) -> dict:
    """Store what the purchase list by appUserId said about this invoice: made by that appUserId, with that id."""
    changes: dict[str, Any] = {"listed_app_user_id": app_user_id, "updated_at": now}
    if purchase_id:
        changes["purchase_ids.purchase_list"] = purchase_id
    return await db[COLLECTION].find_one_and_update({"_id": doc["_id"]}, {"$set": changes},
                                                    return_document=ReturnDocument.AFTER) or doc


def reported_purchase_ids(doc: dict) -> frozenset[str]:
    """Every purchaseId RuStore itself reported for this purchase (proof of possession for claims)."""
    ids = doc.get("purchase_ids") or {}
    return frozenset(str(ids[s]) for s in REPORTED if ids.get(s))


def candidates(doc: dict) -> list[tuple[str, str]]:
    """(purchaseId, source) to confirm with, best first: RuStore's sources, then the owner's own claims."""
    wrong = set(doc.get("wrong_purchase_ids") or [])
    ids = doc.get("purchase_ids") or {}
    found = [(str(ids[s]), s) for s in REPORTED if ids.get(s)]
    owner = doc.get("user_id")
    if owner is not None:
        owned = [c for c in doc.get("claims") or [] if c.get("user_id") == owner and c.get("purchase_id")]
        found += [(str(c["purchase_id"]), "claim") for c in reversed(owned)]  # newest claim first
    seen: set[str] = set()
    best = []
    for pid, source in found:
        # Only a claim can be wrong: an id RuStore itself reported for this invoice stays a candidate even after a
        # 404 or a confirm that has not shown yet (transient answers must not strand a paid hold).
        if pid not in seen and (source in REPORTED or pid not in wrong):
            seen.add(pid)
            best.append((pid, source))
    return best


async def reported_elsewhere(db: Any, doc: dict, purchase_id: str) -> bool:
    """True if this purchaseId is known for another invoice (so confirming it would touch that one)."""
    query = {"_id": {"$ne": doc["_id"]}, "sandbox": doc["sandbox"],
             "$or": [{"purchase_id": purchase_id}, *({f"purchase_ids.{s}": purchase_id} for s in REPORTED)]}
    return await db[COLLECTION].find_one(query, {"_id": 1}) is not None


async def refresh_best(db: Any, doc: dict, now: datetime) -> dict:
    """Write the best confirm candidate of an owned purchase as `purchase_id` / `purchase_id_source`."""
    if doc.get("user_id") is None:
        return doc
    best = candidates(doc)
    pid, source = best[0] if best else (doc.get("purchase_id"), doc.get("purchase_id_source"))
    if pid == doc.get("purchase_id") and source == doc.get("purchase_id_source"):
        return doc
    return await db[COLLECTION].find_one_and_update(
        {"_id": doc["_id"]}, {"$set": {"purchase_id": pid, "purchase_id_source": source, "updated_at": now}},
        return_document=ReturnDocument.AFTER) or doc


async def mark_wrong(db: Any, doc: dict, purchase_id: str, now: datetime) -> dict:
    """Never confirm with this purchaseId again; the best remaining one becomes the candidate."""
    marked = await db[COLLECTION].find_one_and_update(
        {"_id": doc["_id"]}, {"$addToSet": {"wrong_purchase_ids": purchase_id}, "$set": {"updated_at": now}},
        return_document=ReturnDocument.AFTER) or doc
    if marked.get("purchase_id") == purchase_id:
        marked = await db[COLLECTION].find_one_and_update(
            {"_id": doc["_id"], "purchase_id": purchase_id},
            {"$set": {"purchase_id": None, "purchase_id_source": None}}, return_document=ReturnDocument.AFTER) or marked
    return await refresh_best(db, marked, now)
