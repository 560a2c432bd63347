"""What a purchase does to its owner: grant points or ownership when paid, take them back when refunded or reversed.

Both directions are idempotent through ledger keys derived from the invoice (`purchase:<invoiceId>`
and `purchase-clawback:<invoiceId>`), so `documents.purchases.apply_payment` may run them again
after any crash or race; see that module for the order of writes that makes refunds race-safe.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from loguru import logger

from documents import ledger
from documents.billing import PurchasePolicy

COLLECTION = "purchases"
REVOKED = ("reversed", "refunded")


def credit_key(invoice_id: str, sandbox: bool) -> str:
    """Ledger key of the credit for an invoice (one per invoice, forever)."""
    return f"purchase:{'sandbox:' if sandbox else ''}{invoice_id}"


def clawback_key(invoice_id: str, sandbox: bool) -> str:
    """Ledger key of the clawback for an invoice."""
    return f"purchase-clawback:{'sandbox:' if sandbox else ''}{invoice_id}"


async def grant(db: Any, doc: dict, product: Any, policy: PurchasePolicy, now: datetime) -> tuple[bool, int | None]:
    """Credit points (packs) or record ownership (non-consumables) exactly once; True if this call did it."""
    user_id, inv, sandbox = doc["user_id"], doc["invoice_id"], doc["sandbox"]
    if product.points > 0:
        points = doc.get("points") or product.points * max(1, int(doc.get("quantity") or 1))
        try:
            result = await ledger.credit(
                db, user_id, points, "buy", credit_key(inv, sandbox), reference=f"invoice:{inv}",
                meta={"invoice_id": inv, "product_id": product.id, "sandbox": sandbox}, now=now,
            )
        except ledger.IdempotencyKeyMismatch as exc:
            # Credited before with another amount (the pack's points changed in settings since):
            # the purchase is credited; what was credited then stands.
            logger.warning("purchase credited earlier with another amount", invoice_id=inv,
                           credited=exc.entry.amount, now_configured=points)
            result = ledger.LedgerResult(exc.entry, exc.entry.balance_after, True)
            points = exc.entry.amount
        await db[COLLECTION].update_one({"_id": doc["_id"], "credit_entry_id": None},
                                        {"$set": {"credit_entry_id": result.entry.id, "points": points}})
        return not result.replayed, result.balance
    owned = {"product_id": product.id, "invoice_id": inv, "acquired_at": now, "sandbox": sandbox}
    pushed = await db["users"].update_one({"_id": user_id, "owned_products.invoice_id": {"$ne": inv}},
                                          {"$push": {"owned_products": owned}})
    return pushed.modified_count == 1, None


async def revoke(db: Any, doc: dict, policy: PurchasePolicy, now: datetime) -> int | None:
    """Take back what the purchase granted (clawback per policy, or ownership)."""
    user_id, inv, sandbox = doc["user_id"], doc["invoice_id"], doc["sandbox"]
    await db["users"].update_one({"_id": user_id}, {"$pull": {"owned_products": {"invoice_id": inv}}})
    # A credit applied by a process that died before writing its entry sits in the wallet's
    # outbox; write it out first, or the refund would find nothing to take back.
    await ledger.flush_user(db, user_id)
    credit = await ledger.find_entry(db, user_id, credit_key(inv, sandbox))
    if credit is None:
        return None
    result = await ledger.clawback(
        db, user_id, credit.amount, clawback_key(inv, sandbox), corrects=credit.id, reference=f"invoice:{inv}",
        meta={"invoice_id": inv, "rustore_status": doc.get("rustore_status")},
        allow_negative=policy.allow_negative_clawback, now=now,
    )
    await db[COLLECTION].update_one({"_id": doc["_id"], "clawback_entry_id": None},
                                    {"$set": {"clawback_entry_id": result.entry.id}})
    return result.balance


async def settle_revocation(db: Any, doc: dict, policy: PurchasePolicy, now: datetime) -> int | None:
    """Take back what a refunded/reversed purchase granted, then stop scheduling it."""
    balance = await revoke(db, doc, policy, now)
    await db[COLLECTION].update_one({"_id": doc["_id"], "state": {"$in": list(REVOKED)}},
                                    {"$set": {"next_check_at": None, "revoke_pending": False}})
    return balance
