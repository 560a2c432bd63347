"""Refunds and reversals of purchases we credited, applied from the purchase's own record, not today's catalog.

`purchases.sync.verify_invoice` hands every REFUNDED / REVERSED answer here first. When the purchase
is bound to an account, what it granted is taken back (`purchases.effects.settle_revocation`) even if
its product has since been removed from the settings, changed type, or sandbox purchases were
switched off: those rules decide what may be granted, never what must come back. Only RuStore's
app id is still checked. Anything else (an unbound purchase, another account's claim) goes through
`purchases.apply_payment` as before.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ReturnDocument

from documents.billing import Claim, PurchasePolicy, check_refund
from documents.purchases.effects import settle_revocation
from documents.purchases.store import COLLECTION, HISTORY_KEPT, RANK, REVOKED, STATE_OF, PurchaseOutcome, find_purchase
from rustore import Payment


async def revoke_recorded(db: Any, payment: Payment, *, claim: Claim | None, policy: PurchasePolicy,
                          now: datetime, source: str) -> PurchaseOutcome | None:
    """Apply a refund/reversal to a purchase bound to an account from its record; None if it is not such a case."""
    target = STATE_OF.get(payment.status)
    if target not in REVOKED:
        return None
    doc = await find_purchase(db, payment.invoice_id, payment.sandbox)
    if doc is None or doc.get("user_id") is None or (claim is not None and claim.user_id != doc["user_id"]):
        return None
    check_refund(policy, payment)
    if RANK[doc["state"]] < RANK[target]:
        # State first, then look for the credit: a grant racing this refund either wrote its credit
        # before our look (we take it back) or reads our state after its write (it takes it back).
        entry = {"at": now, "state": target, "rustore_status": payment.status.value, "source": source}
        doc = await db[COLLECTION].find_one_and_update(
            {"_id": doc["_id"], "state": {"$in": [s for s, r in RANK.items() if r < RANK[target]]}},
            {"$set": {"state": target, "rustore_status": payment.status.value, "updated_at": now,
                      "needs_confirmation": False, "claimed_by": None, "next_check_at": now, "revoke_pending": True},
             "$push": {"history": {"$each": [entry], "$slice": -HISTORY_KEPT}}},
            return_document=ReturnDocument.AFTER,
        ) or await find_purchase(db, payment.invoice_id, payment.sandbox)
    balance = await settle_revocation(db, doc, policy, now)
    return PurchaseOutcome(doc, False, balance)
