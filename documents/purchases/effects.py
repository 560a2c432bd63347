"""What a purchase does to its owner: grant points or ownership when paid, take them back when refunded or reversed.

Both directions are idempotent through ledger keys derived from the invoice (`purchase:<invoiceId>`
and `purchase-clawback:<invoiceId>`), so `documents.purchases.payments.apply_payment` may run them again
after any crash or race; see that module for the order of writes that makes refunds race-safe.

A grant writes what it granted on the purchase (`granted`: points, product id and type, ownership,
ledger key), and a revocation reads that record, never today's catalog: a product removed from the
settings, changed type, or a sandbox switched off since cannot keep a refund from coming back.
Purchases credited before the record existed fall back to the ledger entry under the credit key.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from loguru import logger

from core.metrics import PURCHASE_REVENUE, PURCHASES_CREDITED
from documents import wallet
from documents.billing import PurchasePolicy, note_shortfall, origin_of, recorded_origin
from documents.purchases.store import COLLECTION, REVOKED

# A revocation that found nothing granted looks once more after this long: a grant that raced it and
# died between its credit and its re-read of the state is taken back then.
REVOKE_RECHECK = timedelta(minutes=10)


def credit_key(invoice_id: str, sandbox: bool) -> str:
    """Ledger key of the credit for an invoice (one per invoice, forever)."""
    return f"purchase:{'sandbox:' if sandbox else ''}{invoice_id}"


def clawback_key(invoice_id: str, sandbox: bool) -> str:
    """Ledger key of the clawback for an invoice."""
    return f"purchase-clawback:{'sandbox:' if sandbox else ''}{invoice_id}"


def grant_record(doc: dict, product: Any, points: int, now: datetime) -> dict:
    """What a grant gave, as stored on the purchase for a later revocation (independent of the catalog)."""
    return {"points": points, "product_id": product.id, "product_type": product.type, "owned": points == 0,
            "credit_key": credit_key(doc["invoice_id"], doc["sandbox"]) if points else None, "at": now}


def is_credited(doc: dict | None) -> bool:
    """True if this purchase granted something to an account (record, or an older document's credit)."""
    return bool(doc and doc.get("user_id") is not None
                and (doc.get("granted") or doc.get("credit_entry_id") or doc.get("state") in ("paid", "confirmed")))


async def grant(db: Any, doc: dict, product: Any, policy: PurchasePolicy, now: datetime,
                source: str | None = None) -> tuple[bool, int | None]:
    """Credit points (packs) or record ownership (non-consumables) exactly once; True if this call did it."""
    user_id, inv, sandbox = doc["user_id"], doc["invoice_id"], doc["sandbox"]
    origin = origin_of(source)
    if product.points > 0:
        points = doc.get("points") or product.points * max(1, int(doc.get("quantity") or 1))
        try:
            result = await wallet.credit(
                db, user_id, points, "buy", credit_key(inv, sandbox), reference=f"invoice:{inv}",
                meta={"invoice_id": inv, "product_id": product.id, "sandbox": sandbox, "credited_by": origin}, now=now,
            )
        except wallet.IdempotencyKeyMismatch as exc:
            # Credited before with another amount (the pack's points changed in settings since):
            # the purchase is credited; what was credited then stands.
            logger.warning("purchase credited earlier with another amount", invoice_id=inv,
                           credited=exc.entry.amount, now_configured=points)
            result = wallet.LedgerResult(exc.entry, exc.entry.balance_after, True)
            points = exc.entry.amount
        await db[COLLECTION].update_one(
            {"_id": doc["_id"], "credit_entry_id": None},
            {"$set": {"credit_entry_id": result.entry.id, "points": points,
                      "credited_by": recorded_origin(result.entry.meta, source),
                      "granted": grant_record(doc, product, points, now)}})
        if not result.replayed:
            _count_sale(doc, product)
        return not result.replayed, result.balance
    owned = {"product_id": product.id, "invoice_id": inv, "acquired_at": now, "sandbox": sandbox}
    # Recorded before the push: a revocation reading the record then finds the ownership to pull.
    await db[COLLECTION].update_one({"_id": doc["_id"], "granted": None},
                                    {"$set": {"granted": grant_record(doc, product, 0, now), "credited_by": origin}})
    pushed = await db["users"].update_one({"_id": user_id, "owned_products.invoice_id": {"$ne": inv}},
                                          {"$push": {"owned_products": owned}})
    if pushed.modified_count == 1:
        _count_sale(doc, product)
    return pushed.modified_count == 1, None


def _count_sale(doc: dict, product: Any) -> None:
    sandbox = str(bool(doc.get("sandbox"))).lower()
    PURCHASES_CREDITED.labels(product.id, sandbox).inc()
    if isinstance(doc.get("amount"), int) and doc.get("currency"):
        PURCHASE_REVENUE.labels(product.id, str(doc["currency"]), sandbox).inc(doc["amount"])


async def revoke(db: Any, doc: dict, policy: PurchasePolicy, now: datetime) -> tuple[bool, int | None]:
    """Take back what the purchase granted (clawback per policy, or ownership); (found a grant, balance)."""
    user_id, inv, sandbox = doc["user_id"], doc["invoice_id"], doc["sandbox"]
    record = doc.get("granted") or {}
    found = bool(doc.get("clawback_entry_id"))
    if record.get("owned", True):  # no record (older document): look for both kinds
        pulled = await db["users"].update_one({"_id": user_id}, {"$pull": {"owned_products": {"invoice_id": inv}}})
        found = found or pulled.modified_count == 1
    # A credit applied by a process that died before writing its entry sits in the wallet's
    # outbox; write it out first, or the refund would find nothing to take back.
    await wallet.flush_user(db, user_id)
    credit = await wallet.find_entry(db, user_id, record.get("credit_key") or credit_key(inv, sandbox))
    if credit is None:
        return found, None
    result = await wallet.clawback(
        db, user_id, credit.amount, clawback_key(inv, sandbox), corrects=credit.id, reference=f"invoice:{inv}",
        meta={"invoice_id": inv, "rustore_status": doc.get("rustore_status")},
        allow_negative=policy.allow_negative_clawback, now=now,
    )
    note_shortfall("purchase", result, invoice_id=inv, user_id=str(user_id))
    await db[COLLECTION].update_one({"_id": doc["_id"], "clawback_entry_id": None},
                                    {"$set": {"clawback_entry_id": result.entry.id}})
    return True, result.balance


async def settle_revocation(db: Any, doc: dict, policy: PurchasePolicy, now: datetime) -> int | None:
    """Take back what a refunded/reversed purchase granted, then stop scheduling it (after one more look if none)."""
    found, balance = (False, None) if doc.get("user_id") is None else await revoke(db, doc, policy, now)
    revoked = {"_id": doc["_id"], "state": {"$in": list(REVOKED)}}
    if not found and doc.get("user_id") is not None:
        # Nothing granted yet: a grant may be racing us and its process may die before it re-reads
        # the state, so keep the purchase due for one more look (the first look to get here schedules it).
        scheduled = await db[COLLECTION].update_one(
            {**revoked, "revoke_recheck_at": None},
            {"$set": {"revoke_recheck_at": now + REVOKE_RECHECK, "next_check_at": now + REVOKE_RECHECK,
                      "revoke_pending": True}})
        if scheduled.modified_count:
            return balance
        revoked["revoke_recheck_at"] = {"$lte": now}  # only that later look ends it
    await db[COLLECTION].update_one(revoked, {"$set": {"next_check_at": None, "revoke_pending": False}})
    return balance
