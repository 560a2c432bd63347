"""Events derived from ledger entries: `points.changed` for every entry, plus the purchase/subscription event it is.

Called by `documents.wallet.outbox.write_settled` after the entries are stored and BEFORE they leave the
wallet's outbox, so an entry's events exist iff the entry exists: a process dying before this call
leaves the op in the outbox, and whoever flushes it next (the next op on the wallet, the repair job)
calls this again; ids are derived from the entry id, so nothing is recorded twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bson import ObjectId

from documents import events as events_doc
from documents.wallet.entries import CLAWBACK, TRANSACTIONS, LedgerEntry

CLAWBACK_KEYS = ("purchase-clawback:", "subgrant-clawback:")


def started_key(purchase_id: str | None, sandbox: bool) -> str:
    """Key of a subscription's `subscription.started` (one per subscription, whichever path sees it first)."""
    return f"subscription.started:{'sandbox:' if sandbox else ''}{purchase_id}"


def _sandbox(entry: LedgerEntry) -> bool:
    if "sandbox" in entry.meta:
        return bool(entry.meta["sandbox"])
    key = entry.idempotency_key  # purchase-clawback:sandbox:<invoice>
    return key.startswith(CLAWBACK_KEYS) and key.split(":")[1:2] == ["sandbox"]


def _points(entry: LedgerEntry) -> dict:
    return {"entryId": str(entry.id), "type": entry.type, "amount": entry.amount, "balanceAfter": entry.balance_after,
            "reference": entry.reference, "seq": entry.seq}


async def _credited_meta(db: Any, entry: LedgerEntry) -> dict:
    corrected = entry.meta.get("corrects")
    doc = await db[TRANSACTIONS].find_one({"_id": corrected}, {"meta": 1, "amount": 1}) if corrected else None
    return doc or {}


async def _subscription_event(db: Any, entry: LedgerEntry) -> tuple[str, dict]:
    purchase_id = entry.meta.get("purchase_id")
    earlier = await db[TRANSACTIONS].find_one({"user_id": entry.user_id, "type": "subscription_grant",
                                               "meta.purchase_id": purchase_id, "seq": {"$lt": entry.seq}}, {"_id": 1})
    period_end = entry.meta.get("period_end")
    data = {"purchaseId": purchase_id, "productId": entry.meta.get("product_id"),
            "periodEnd": events_doc.iso(period_end), "points": entry.amount, "balanceAfter": entry.balance_after}
    return ("subscription.renewed" if earlier else "subscription.started"), data


async def _typed_event(db: Any, entry: LedgerEntry) -> tuple[str, dict] | None:
    key = entry.idempotency_key
    if entry.type == "buy" and key.startswith("purchase:"):
        return "purchase.credited", {"invoiceId": entry.meta.get("invoice_id"), "productId": entry.meta.get("product_id"),
                                     "points": entry.amount, "balanceAfter": entry.balance_after}
    if entry.type == "subscription_grant":
        return await _subscription_event(db, entry)
    if entry.type == CLAWBACK and key.startswith(CLAWBACK_KEYS):
        credited = await _credited_meta(db, entry)
        data = {"invoiceId": entry.meta.get("invoice_id"), "productId": (credited.get("meta") or {}).get("product_id"),
                "status": entry.meta.get("rustore_status"), "pointsTakenBack": -entry.amount,
                "requested": entry.meta.get("requested"), "shortfall": entry.meta.get("shortfall", 0),
                "balanceAfter": entry.balance_after}
        if key.startswith("purchase-clawback:"):
            return "purchase.revoked", data
        return "subscription.revoked", data | {"purchaseId": entry.meta.get("purchase_id"),
                                               "periodEnd": events_doc.iso(entry.meta.get("period_end"))}
    return None


async def record_entries(db: Any, user_id: ObjectId, entries: Iterable[LedgerEntry]) -> None:
    """Record the events of stored ledger entries (idempotent; nothing when events are off)."""
    if not events_doc.endpoints(db):
        return
    for entry in entries:
        typed = await _typed_event(db, entry)
        if typed is not None:  # the business event first, then the balance it moved
            kind, data = typed
            key = started_key(data["purchaseId"], _sandbox(entry)) if kind == "subscription.started" else f"{kind}:{entry.id}"
            await events_doc.record(db, key, kind, user_id, sandbox=_sandbox(entry), data=data, created_at=entry.created_at)
        await events_doc.record(db, f"points:{entry.id}", "points.changed", user_id, sandbox=_sandbox(entry),
                            data=_points(entry), created_at=entry.created_at)
