"""Refunded subscription charges: which granted period an invoice paid for, and taking that period's points back.

RuStore refunds one invoice at a time (P7, console or API) and revokes nothing itself (API.md §2.8).
The subscription's status stays what RuStore reports, so access is untouched here; only the points the
refunded charge bought are clawed back, down to zero unless `PurchasePolicy.allow_negative_clawback`.

Which period a charge paid for, strongest evidence first:
1. the invoice id recorded on the period: from V3/V4 `orderId` when it is a bare invoice id (only the
   first charge; `41456..3` names no invoice, see `invoice_of_order`), or linked by `link_charge` when
   a CONFIRMED charge is seen (a subscription's INVOICE_STATUS notification);
2. otherwise the earliest granted period ending after the payment that no other invoice is linked to:
   a renewal is charged when the previous period ends (later in grace, at the new start in hold), so
   the payment buys the period that starts there. A free trial's zero-amount invoice paid for nothing.

Order, as for one-time purchases: a refund is written on the subscription (`refunds[]` and
`refund_due_at`) BEFORE its grant is looked for; a grant records its period before crediting and
re-reads the refunds after crediting (`subscriptions.apply`). Whichever comes second sees the other,
so a grant racing a refund never keeps the points. Clawbacks are keyed per period
(`subgrant-clawback:[sandbox:]<purchaseId>:<end ms>`) and correct the grant's entry, so every path
settling the same refund takes back once. A crash after recording leaves `refund_due_at` set and
`subscription-reconcile` finishes it without asking RuStore.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from loguru import logger

from documents import wallet
from documents.billing import PurchasePolicy, note_shortfall
from documents.common import utc
from documents.subscriptions.store import COLLECTION
from rustore import InvoiceStatus, Payment

REFUNDED = (InvoiceStatus.REFUNDED, InvoiceStatus.REVERSED)
FIELDS = {"user_id": 1, "purchase_id": 1, "sandbox": 1, "granted_periods": 1, "refunds": 1, "refund_due_at": 1}


def clawback_key(period_key: str) -> str:
    """Ledger key of the clawback of one granted period (`subgrant:...` -> `subgrant-clawback:...`)."""
    return "subgrant-clawback:" + period_key.removeprefix("subgrant:")


def invoice_of_order(order_id: str | None) -> str | None:
    """The invoice RuStore's V3/V4 `orderId` names: a bare id only (one invoice so far); `41456..3` names none."""
    return order_id if order_id and order_id.isdigit() else None


def paid_at(payment: Payment) -> datetime | None:
    """When the charge was paid (its payment date, else the invoice date)."""
    return payment.payment_date or payment.invoice_date


def match_period(periods: list[dict], invoice_id: str, paid: datetime | None) -> dict | None:
    """The granted period this invoice paid for: the one linked to it, else the first unlinked one ending after `paid`."""
    for period in periods:
        if period.get("invoice_id") == invoice_id:
            return period
    if paid is None:
        return None
    later = [p for p in periods if not p.get("invoice_id") and utc(p["end_date"]) > utc(paid)]
    return min(later, key=lambda p: utc(p["end_date"]), default=None)


async def _link(db: Any, sub_id: ObjectId, period_key: str, invoice_id: str) -> bool:
    # Only an unlinked period: two charges never claim one period, whichever path links first.
    linked = await db[COLLECTION].update_one(
        {"_id": sub_id, "granted_periods": {"$elemMatch": {"key": period_key, "invoice_id": None}}},
        {"$set": {"granted_periods.$.invoice_id": invoice_id}},
    )
    return linked.modified_count == 1


async def link_charge(db: Any, sub_id: ObjectId, payment: Payment) -> str | None:
    """Record a paid charge's invoice id on the granted period it paid for; the period's key, or None."""
    doc = await db[COLLECTION].find_one({"_id": sub_id}, {"granted_periods": 1}) or {}
    invoice_id = str(payment.invoice_id)
    period = match_period(doc.get("granted_periods") or [], invoice_id, paid_at(payment))
    if period is None:
        return None
    if period.get("invoice_id") == invoice_id or await _link(db, sub_id, period["key"], invoice_id):
        return period["key"]
    return None


async def apply_charge(
    db: Any, sub_id: ObjectId, payment: Payment, *, policy: PurchasePolicy, now: datetime, source: str,
) -> tuple[int, int | None]:
    """Apply RuStore's record of one charge: link a paid one to its period, take a refunded one's points back."""
    if payment.amount == 0:
        return 0, None  # a free trial's invoice: it paid for no period
    if payment.status in REFUNDED:
        await record_refund(db, sub_id, payment, now, source)
        return await settle_refunds(db, sub_id, policy, now)
    if payment.status is InvoiceStatus.CONFIRMED:
        await link_charge(db, sub_id, payment)
    return 0, None


async def record_refund(db: Any, sub_id: ObjectId, payment: Payment, now: datetime, source: str) -> None:
    """Write the refund on the subscription (once per invoice) and make it due, before anything is taken back."""
    invoice_id = str(payment.invoice_id)
    entry = {"invoice_id": invoice_id, "status": payment.status.value, "paid_at": paid_at(payment),
             "refund_date": payment.refund_date, "amount": payment.amount, "recorded_at": now, "source": source,
             "period_key": None, "clawback_entry_id": None}
    await db[COLLECTION].update_one({"_id": sub_id, "refunds.invoice_id": {"$ne": invoice_id}},
                                    {"$push": {"refunds": entry}, "$set": {"refund_due_at": now}})


async def settle_refunds(db: Any, sub_id: ObjectId, policy: PurchasePolicy, now: datetime) -> tuple[int, int | None]:
    """Claw back every recorded refund's period not yet taken back; (points taken by this call, balance or None)."""
    doc = await db[COLLECTION].find_one({"_id": sub_id}, FIELDS)
    if doc is None:
        return 0, None
    refunds = doc.get("refunds") or []
    pending = [r for r in refunds if r.get("clawback_entry_id") is None]
    taken, balance, settled = 0, None, True
    if pending and doc.get("user_id"):
        # A grant applied by a process that died before writing its entry sits in the wallet's
        # outbox; write it out first, or the refund would find nothing to take back.
        await wallet.flush_user(db, doc["user_id"])
        for refund in pending:
            result = await _settle_one(db, doc, refund, policy, now)
            if result is False:
                settled = False
            elif result is not None:
                taken += 0 if result.replayed else -result.entry.amount
                balance = result.balance
    if doc.get("refund_due_at") is not None and settled:
        # Not over a refund recorded since our read: that one is still due.
        await db[COLLECTION].update_one({"_id": sub_id, "refunds": {"$size": len(refunds)}},
                                        {"$unset": {"refund_due_at": ""}})
    return taken, balance


async def _settle_one(db: Any, doc: dict, refund: dict, policy: PurchasePolicy,
                      now: datetime) -> wallet.LedgerResult | bool | None:
    """Take back one refund's period: the clawback, None (nothing to take yet) or False (try again later)."""
    invoice_id, user_id = refund["invoice_id"], doc["user_id"]
    period = match_period(doc.get("granted_periods") or [], invoice_id, refund.get("paid_at"))
    if period is None:
        # Its period is not granted (yet): the grant re-reads the refunds after crediting.
        logger.info("refunded subscription charge matches no granted period", purchase_id=doc["purchase_id"],
                    invoice_id=invoice_id)
        return None
    if period.get("invoice_id") is None and not await _link(db, doc["_id"], period["key"], invoice_id):
        return False  # another charge was linked to it meanwhile: match again on the next look
    credit = await wallet.find_entry(db, user_id, period["key"])
    if credit is None:
        return None  # recorded but not credited yet: its granter re-reads the refunds after crediting
    try:
        result = await wallet.clawback(
            db, user_id, credit.amount, clawback_key(period["key"]), corrects=credit.id,
            reference=f"subscription:{doc['purchase_id']}",
            meta={"purchase_id": doc["purchase_id"], "invoice_id": invoice_id, "period_end": period["end_date"],
                  "rustore_status": refund["status"], "sandbox": doc["sandbox"]},
            allow_negative=policy.allow_negative_clawback, now=now,
        )
    except wallet.IdempotencyKeyMismatch as exc:  # taken back earlier under another policy: still once
        result = wallet.LedgerResult(exc.entry, exc.entry.balance_after, True)
    note_shortfall("subscription", result, purchase_id=doc["purchase_id"], user_id=str(user_id))
    await db[COLLECTION].update_one(
        {"_id": doc["_id"], "granted_periods.key": period["key"]},
        {"$set": {"granted_periods.$.clawback_entry_id": result.entry.id,
                  "granted_periods.$.refunded_at": refund["recorded_at"],
                  "granted_periods.$.refund_status": refund["status"]}},
    )
    await db[COLLECTION].update_one(  # last: it is what marks this refund settled
        {"_id": doc["_id"], "refunds.invoice_id": invoice_id},
        {"$set": {"refunds.$.period_key": period["key"], "refunds.$.clawback_entry_id": result.entry.id}},
    )
    return result


async def settle_due(db: Any, policy: PurchasePolicy, now: datetime, limit: int) -> tuple[int, int]:
    """Finish refunds a crash left recorded but not taken back (no RuStore call); (subscriptions, points taken)."""
    due = await db[COLLECTION].find({"refund_due_at": {"$lte": now}}, {"_id": 1}).limit(limit).to_list(limit)
    taken = 0
    for doc in due:
        taken += (await settle_refunds(db, doc["_id"], policy, now))[0]
    return len(due), taken


async def find_charged(db: Any, payment: Payment, sandbox: bool) -> dict | None:
    """The subscription a listed refunded invoice charged, unless its refund is already recorded there."""
    invoice_id = str(payment.invoice_id)
    charged: list[dict] = [{"granted_periods.invoice_id": invoice_id}]
    if payment.purchase_id:
        charged.append({"purchase_id": payment.purchase_id, "source": "pay"})
    query: dict[str, Any] = {"sandbox": sandbox, "refunds.invoice_id": {"$ne": invoice_id}, "$or": charged}
    if payment.product_id:
        query["product_id"] = payment.product_id
    return await db[COLLECTION].find_one(query, {"_id": 1, "purchase_id": 1})
