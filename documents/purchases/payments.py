"""Applies RuStore's word about one invoice: the one function through which a one-time purchase changes anything.

`apply_payment` is reached (through `documents.purchases.sync`) by the verify endpoint, the webhook
processor and the reconciliation job, always with a `Payment` fetched from RuStore, never with the
app's claims. Effects run BEFORE the state is written and are idempotent through ledger keys derived
from the invoice (`purchase:<invoiceId>` to credit, `purchase-clawback:<invoiceId>` to take back), so
a crash between any two steps is finished by whoever looks at the purchase next (the app retrying, a
webhook, or the job, which re-checks every purchase that is not final): nothing paid is lost and
nothing is credited twice. Refunds do not revoke anything at RuStore, so we must; refunds of spent
points follow the clawback policy. States and the document shape: `documents.purchases.store`.
Ownership is `billing.decide_owner`; the purchaseId evidence and the confirm candidate are
`documents.purchases.evidence`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument

from documents.billing import (
    Claim,
    Ownership,
    PurchaseMismatch,
    PurchasePolicy,
    bind_owner,
    check_payment,
    decide_owner,
    mark_order_used,
    store_claim,
    stored_claims,
)
from documents.purchases.effects import grant, settle_revocation
from documents.purchases.evidence import new_purchase, refresh_best, reported_purchase_ids, upsert_purchase
from documents.purchases.store import (
    COLLECTION,
    FINAL,
    GRANTED,
    HISTORY_KEPT,
    RANK,
    REVOKED,
    STATE_OF,
    PurchaseOutcome,
)
from rustore import Payment


def _history(now: datetime, state: str, status: str, source: str) -> dict:
    return {"$push": {"history": {"$each": [{"at": now, "state": state, "rustore_status": status, "source": source}],
                                  "$slice": -HISTORY_KEPT}}}


def _check_claimed_purchase_id(doc: dict, claim: Claim | None) -> None:
    """A claimed purchaseId must be one RuStore reported for this invoice, once RuStore reported any."""
    reported = reported_purchase_ids(doc)
    if claim is not None and claim.purchase_id and reported and claim.purchase_id not in reported:
        raise PurchaseMismatch("purchaseId does not match what RuStore reported for this invoice.")


async def record_unverified(db: Any, invoice_id: str, sandbox: bool, now: datetime, error: str,
                            claim: Claim | None = None) -> dict:
    """Remember an invoice RuStore could not be asked about, and the claim whole, so the job re-checks both later."""
    doc = await upsert_purchase(db, invoice_id, sandbox, {
        "$setOnInsert": new_purchase(now), "$set": {"next_check_at": now, "last_error": error, "updated_at": now}})
    if claim is not None:
        # Nothing is bound here: the job applies RuStore's record and `decide_owner` to this claim.
        await store_claim(db, COLLECTION, doc["_id"], claim, now)
    return doc


async def _upsert_record(db: Any, payment: Payment, product: Any, now: datetime) -> dict:
    known = {
        "order_id": payment.order_id, "product_id": payment.product_id,
        "amount": payment.amount, "currency": payment.currency, "quantity": payment.quantity,
        "purchase_ids.rustore": payment.purchase_id,
    }
    # RuStore's fields are written only when present: an answer missing one (several are not
    # confirmed in its docs) must not erase what an earlier answer recorded.
    fields = {k: v for k, v in known.items() if v is not None}
    fields |= {"product_type": product.type, "last_checked_at": now, "updated_at": now}
    insert = new_purchase(now) | {"rustore_status": payment.status.value, "next_check_at": now + timedelta(minutes=1)}
    insert.pop("purchase_ids")  # written through the dotted `purchase_ids.rustore` path instead
    return await upsert_purchase(db, payment.invoice_id, payment.sandbox, {"$setOnInsert": insert, "$set": fields})


async def _advance(db: Any, doc: dict, target: str, status: str, source: str, now: datetime) -> dict:
    """Move the state forward (never back); schedule the next check for non-final states."""
    lower = [s for s, r in RANK.items() if r < RANK[target]]
    changes: dict[str, Any] = {"state": target, "updated_at": now}
    changes["rustore_status"] = status
    if target == "paid":
        changes |= {"needs_confirmation": True, "next_check_at": now, "held_since": now}
    elif target == "pending":
        changes["next_check_at"] = now + timedelta(minutes=1)
    elif target in REVOKED:
        # Due at once: if this process dies before the clawback, the job finishes it.
        changes |= {"needs_confirmation": False, "next_check_at": now, "revoke_pending": True}
    else:
        changes |= {"needs_confirmation": False, "next_check_at": None}
    moved = await db[COLLECTION].find_one_and_update(
        {"_id": doc["_id"], "state": {"$in": lower}}, {"$set": changes, **_history(now, target, status, source)},
        return_document=ReturnDocument.AFTER,
    )
    return moved or await db[COLLECTION].find_one({"_id": doc["_id"]})


async def apply_payment(
    db: Any, payment: Payment, *, claim: Claim | None, products: Mapping[str, Any], policy: PurchasePolicy,
    now: datetime, source: str,
) -> PurchaseOutcome:
    """Record RuStore's view of an invoice, bind it to its owner, and grant or revoke exactly once."""
    product = check_payment(policy, products, payment, claim)
    doc = await _upsert_record(db, payment, product, now)
    _check_claimed_purchase_id(doc, claim)
    app_user_ids = tuple(x for x in (payment.app_user_id, doc.get("listed_app_user_id")) if x)
    evidence = Ownership(order_id=payment.order_id, developer_payload=payment.developer_payload,
                         app_user_ids=app_user_ids, product_id=payment.product_id,
                         reported_purchase_ids=reported_purchase_ids(doc))
    decision = await decide_owner(db, evidence, claim=claim, stored_claims=stored_claims(doc),
                                  bound_to=doc.get("user_id"), policy=policy)
    owner, order = decision.owner, decision.order
    if claim is not None and doc.get("user_id") is None:
        # Stored only once the rule accepted it: a refused claim (409, product mismatch) writes nothing.
        await store_claim(db, COLLECTION, doc["_id"], claim, now)  # binding below re-reads the document
    if owner is None:
        # Unowned until evidence names its owner: a notification, the purchase list, or the buyer's verify.
        await db[COLLECTION].update_one({"_id": doc["_id"], "user_id": None}, {"$set": {"next_check_at": None}})
        return PurchaseOutcome(doc, False, None, pending_claim=decision.pending)
    doc = await bind_owner(db, COLLECTION, doc, owner, claim)
    if claim is not None and claim.user_id == owner and claim.purchase_id:
        await store_claim(db, COLLECTION, doc["_id"], claim, now)  # the owner's SDK purchaseId: a confirm candidate
        doc = await db[COLLECTION].find_one({"_id": doc["_id"]}) or doc
    doc = await refresh_best(db, doc, now)
    if doc.get("next_check_at") is None and doc["state"] not in FINAL:
        # Bound just now after an unowned spell (which stops checks): the job follows it again.
        doc = await db[COLLECTION].find_one_and_update(
            {"_id": doc["_id"]}, {"$set": {"next_check_at": now + timedelta(minutes=1)}},
            return_document=ReturnDocument.AFTER) or doc
    if order is not None:
        await mark_order_used(db, order["_id"], invoice_id=payment.invoice_id)
    target = STATE_OF.get(payment.status, "pending")
    if RANK[target] < RANK[doc["state"]]:
        target = doc["state"]  # a stale answer: keep what we know, but still finish its effects below
    credited_now, balance = False, None
    if target in REVOKED:
        # State first, then look for the credit: a grant racing this refund either wrote its credit
        # before our look (we take it back) or reads our state after its write (it takes it back).
        if target != doc["state"]:
            doc = await _advance(db, doc, target, payment.status.value, source, now)
        balance = await settle_revocation(db, doc, policy, now)
        return PurchaseOutcome(doc, False, balance)
    if target in GRANTED:
        credited_now, balance = await grant(db, doc, product, policy, now, source)
    if target != doc["state"]:
        doc = await _advance(db, doc, target, payment.status.value, source, now)
    if doc["state"] in REVOKED:  # a refund landed while we were granting: undo our grant now
        balance = await settle_revocation(db, doc, policy, now)
    return PurchaseOutcome(doc, credited_now, balance)
