"""The `purchases` collection: one document per RuStore invoice, its states, indexes and reads.

States (ours), from RuStore's invoice status::

    CREATED, EXECUTED, UNKNOWN -> pending     PAID -> paid (two-step hold)   CONFIRMED -> confirmed
    CANCELLED, REJECTED, EXPIRED -> failed    REVERSED -> reversed           REFUNDED -> refunded

A state only moves forward (pending < paid < confirmed < failed/reversed/refunded), so a stale
or out-of-order answer never undoes a newer one. Granted in `paid` and `confirmed`; taken back in
`reversed` and `refunded`.

Document shape (admins read it in Compass)::

    {_id, invoice_id, sandbox, purchase_id, purchase_id_source, purchase_ids: {rustore, notification,
     purchase_list}, wrong_purchase_ids, listed_app_user_id, order_id, product_id, product_type,
     user_id | null, claims: [{user_id, purchase_id, product_id, order_id, at}], state,
     rustore_status, amount, currency, quantity, points, granted, credit_entry_id, credited_by,
     clawback_entry_id, needs_confirmation, held_since, next_check_at, check_attempts, last_error,
     history: [{at, state, rustore_status, source}], created_at, updated_at}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel

from rustore import InvoiceStatus

COLLECTION = "purchases"
HISTORY_KEPT = 50
INDEXES = {
    COLLECTION: [
        IndexModel([("invoice_id", ASCENDING), ("sandbox", ASCENDING)], unique=True, name="invoice_unique"),
        IndexModel([("next_check_at", ASCENDING)], sparse=True, name="next_check"),
        IndexModel([("user_id", ASCENDING), ("created_at", DESCENDING)], name="user_purchases"),
        # The purchase history pages by _id, newest first (GET /api/payments/history, `python server.py user`).
        IndexModel([("user_id", ASCENDING), ("_id", DESCENDING)], name="user_purchase_history"),
        IndexModel([("purchase_id", ASCENDING)], sparse=True, name="purchase_id"),
        IndexModel([("purchase_ids.notification", ASCENDING)], sparse=True, name="notified_purchase_id"),
        # `reported_elsewhere` looks a purchaseId up in every source RuStore reported it by (an $or, one index each).
        IndexModel([("purchase_ids.rustore", ASCENDING)], sparse=True, name="rustore_purchase_id"),
        IndexModel([("purchase_ids.purchase_list", ASCENDING)], sparse=True, name="listed_purchase_id"),
        IndexModel([("needs_confirmation", ASCENDING), ("held_since", ASCENDING)], sparse=True, name="holds"),
        # The event job's pass over purchases changed since its last run (non-consumables move no points).
        IndexModel([("updated_at", ASCENDING)], name="updated"),
    ]
}

STATE_OF = {
    InvoiceStatus.CREATED: "pending", InvoiceStatus.EXECUTED: "pending", InvoiceStatus.UNKNOWN: "pending",
    InvoiceStatus.PAID: "paid", InvoiceStatus.CONFIRMED: "confirmed",
    InvoiceStatus.CANCELLED: "failed", InvoiceStatus.REJECTED: "failed", InvoiceStatus.EXPIRED: "failed",
    InvoiceStatus.REVERSED: "reversed", InvoiceStatus.REFUNDED: "refunded",
}
RANK = {"pending": 0, "paid": 1, "confirmed": 2, "failed": 3, "reversed": 3, "refunded": 3}
GRANTED = ("paid", "confirmed")
REVOKED = ("reversed", "refunded")
FINAL = ("confirmed", "failed", "reversed", "refunded")


@dataclass(frozen=True)
class PurchaseOutcome:
    """What applying RuStore's record did: the purchase as stored and whether this call credited it."""

    purchase: dict
    credited_now: bool
    balance: int | None
    pending_claim: bool = False


async def find_purchase(db: Any, invoice_id: str, sandbox: bool) -> dict | None:
    """The purchase document of an invoice, or None."""
    return await db[COLLECTION].find_one({"invoice_id": invoice_id, "sandbox": sandbox})


async def list_user_purchases(db: Any, user_id: ObjectId, *, limit: int, before: ObjectId | None = None) -> list[dict]:
    """The user's purchases, newest first, paged by document id."""
    query: dict[str, Any] = {"user_id": user_id}
    if before is not None:
        query["_id"] = {"$lt": before}
    return await db[COLLECTION].find(query, {"history": 0}).sort("_id", DESCENDING).limit(limit).to_list(limit)
