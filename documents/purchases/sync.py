"""Asks RuStore about an invoice and applies the answer: the path shared by verify, webhooks and jobs.

`verify_invoice` fetches the payment (P3), applies it with `purchases.apply_payment`, and for a
two-step purchase held in PAID confirms it at RuStore (P5) right after the points are safely
credited, with the best purchaseId the evidence gives (`documents.purchases.evidence`); RuStore's
purchase list by appUserId is asked when an unowned purchase has claimants or a hold lacks a
purchaseId from RuStore. If RuStore cannot be reached, or refuses our credentials, the claim is recorded and the
purchase is scheduled, so the reconciliation job completes it once RuStore answers; a user who paid
never loses points. Confirmation failures keep `needs_confirmation` set and the job retries every
few minutes, well inside RuStore's 6-hour hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from loguru import logger

from documents.billing import Claim, PurchaseMismatch, PurchaseNotFound, PurchasePolicy
from documents.common import backoff
from documents.purchases.evidence import (
    candidates,
    mark_wrong,
    note_listed,
    note_purchase_id,
    reported_elsewhere,
    reported_purchase_ids,
)
from documents.purchases.payments import apply_payment, record_unverified
from documents.purchases.revocation import revoke_recorded
from documents.purchases.store import COLLECTION, PurchaseOutcome
from rustore import InvoiceStatus, RuStoreAuthError, RuStoreNotFound, RuStoreRejected, RuStoreUnavailable

CONFIRM_RETRY = timedelta(minutes=2)
FIRST_RETRY = timedelta(minutes=1)  # then 2, 4 ... minutes
MAX_BACKOFF = timedelta(minutes=30)


async def note_check_failure(db: Any, doc: dict, now: datetime, error: str, *, outage: bool = False,
                             max_backoff: timedelta = MAX_BACKOFF) -> None:
    """Count a failed check and schedule the next one (sooner for holds awaiting confirmation).

    A failure caused by a RuStore-wide outage (`outage`) is not this purchase's fault: its counter does
    not grow, and the recovery pass re-checks it as soon as RuStore answers again.
    """
    attempts = int(doc.get("check_attempts") or 0) + (0 if outage else 1)
    cap = min(CONFIRM_RETRY, max_backoff) if doc.get("needs_confirmation") else max_backoff
    await db[COLLECTION].update_one(
        {"_id": doc["_id"]},
        {"$set": {"check_attempts": attempts, "last_error": error,
                  "next_check_at": now + backoff(attempts, first=FIRST_RETRY, cap=cap)}},
    )


LIST_CLAIMERS_MAX = 3  # purchase-list calls per check for an unowned purchase's claimants


async def verify_invoice(
    db: Any, client: Any, invoice_id: str, *, sandbox: bool, claim: Claim | None, products: Mapping[str, Any],
    policy: PurchasePolicy, now: datetime, source: str, notified_purchase_id: str | None = None,
) -> PurchaseOutcome:
    """Fetch an invoice from RuStore, apply it, confirm a held two-step purchase; exactly-once effects.

    `notified_purchase_id` is the `purchase_id` of an authenticated INVOICE_STATUS notification for
    this invoice: stored as evidence before anything else, so it counts even while RuStore is down.
    """
    if notified_purchase_id:
        await note_purchase_id(db, invoice_id, sandbox, "notification", notified_purchase_id, now)
    try:
        payment = await client.get_payment(invoice_id, sandbox=sandbox)
    except RuStoreNotFound:
        raise PurchaseNotFound("RuStore does not know this invoice.") from None
    except (RuStoreUnavailable, RuStoreAuthError) as exc:
        # Neither says anything about the invoice: record it (and the claim, whole) so the job asks
        # again later, even when a webhook was the only sign of it and later gives up.
        await record_unverified(db, invoice_id, sandbox, now, type(exc).__name__, claim)
        raise
    if str(payment.invoice_id) != str(invoice_id):
        raise PurchaseMismatch("RuStore answered for another invoice.")
    revoked = await revoke_recorded(db, payment, claim=claim, policy=policy, now=now, source=source)
    if revoked is not None:  # a refund of a bound purchase: its record decides, not today's catalog
        return revoked
    outcome = await apply_payment(db, payment, claim=claim, products=products, policy=policy, now=now, source=source)
    if await _learn_from_purchase_list(db, client, outcome.purchase, claim, now):
        outcome = await apply_payment(db, payment, claim=claim, products=products, policy=policy, now=now,
                                      source=source)
    if outcome.purchase.get("state") == "paid" and outcome.purchase.get("needs_confirmation"):
        outcome = await confirm_held(db, client, outcome, products=products, policy=policy, now=now, source=source)
    return outcome


def _list_targets(doc: dict, claim: Claim | None) -> list[str]:
    """Whose purchase lists could add evidence: the claimants of an unowned purchase, or the owner of a
    hold with no purchaseId from RuStore yet."""
    if doc.get("listed_app_user_id"):
        return []  # already learned what the list says about this invoice
    if doc.get("user_id") is None:
        users = [claim.user_id] if claim else []
        users += [c["user_id"] for c in doc.get("claims") or []]
        return list(dict.fromkeys(str(u) for u in users))[:LIST_CLAIMERS_MAX]
    if doc.get("state") == "paid" and doc.get("needs_confirmation") and not reported_purchase_ids(doc):
        return [str(doc["user_id"])]
    return []


async def _learn_from_purchase_list(db: Any, client: Any, doc: dict, claim: Claim | None, now: datetime) -> bool:
    """Ask RuStore's purchase list by appUserId about this invoice; True if it named the invoice."""
    for app_user_id in _list_targets(doc, claim):
        try:
            listed = await client.list_user_purchases(app_user_id, sandbox=doc["sandbox"])
        except (RuStoreUnavailable, RuStoreAuthError, RuStoreRejected) as exc:
            logger.info("purchase list unavailable; no evidence from it", invoice_id=doc["invoice_id"],
                        error=type(exc).__name__)
            return False
        for item in listed:
            if item.invoice_id == str(doc["invoice_id"]):
                await note_listed(db, doc, app_user_id, item.purchase_id, now)
                return True
    return False


async def confirm_held(
    db: Any, client: Any, outcome: PurchaseOutcome, *, products: Mapping[str, Any], policy: PurchasePolicy,
    now: datetime, source: str,
) -> PurchaseOutcome:
    """Confirm a PAID hold at RuStore (points are already credited) with the best purchaseId we have.

    A claimed purchaseId RuStore refuses as not found, or whose confirm leaves this invoice PAID, is
    marked wrong and the next best is tried; an id RuStore itself reported for the invoice is never
    marked wrong (a 404 may be transient, a confirm may show late) and is tried again on the next
    check. With none left the hold waits for evidence (a notification, the purchase list) and the
    job looks again within minutes, well inside RuStore's 6-hour hold.
    """
    doc = outcome.purchase
    for purchase_id, origin in candidates(doc):
        if origin == "claim" and await reported_elsewhere(db, doc, purchase_id):
            # RuStore named this id for another invoice: confirming it would charge someone else's hold.
            logger.warning("claimed purchaseId belongs to another invoice; not used", invoice_id=doc["invoice_id"])
            doc = await mark_wrong(db, doc, purchase_id, now)
            continue
        try:
            await client.confirm_purchase(purchase_id, sandbox=doc["sandbox"])
        except RuStoreNotFound:
            logger.warning("confirm: RuStore does not know this purchaseId", invoice_id=doc["invoice_id"],
                           source=origin)
            if origin == "claim":  # an id RuStore reported for this invoice is tried again on the next check
                doc = await mark_wrong(db, doc, purchase_id, now)
            continue
        except RuStoreRejected as exc:
            # Usually "Purchase status must be PAID": confirmed elsewhere or reversed. RuStore's record decides.
            logger.info("confirm refused by RuStore", invoice_id=doc["invoice_id"], message=exc.message)
        except RuStoreUnavailable as exc:
            await note_check_failure(db, doc, now, f"confirm: {type(exc).__name__}", outage=exc.outage)
            return replace(outcome, purchase=doc)
        try:
            payment = await client.get_payment(doc["invoice_id"], sandbox=doc["sandbox"])
        except RuStoreUnavailable as exc:
            await note_check_failure(db, doc, now, f"after confirm: {type(exc).__name__}", outage=exc.outage)
            return replace(outcome, purchase=doc)
        again = await apply_payment(db, payment, claim=None, products=products, policy=policy, now=now, source=source)
        merged = replace(again, credited_now=outcome.credited_now or again.credited_now,
                         balance=again.balance if again.balance is not None else outcome.balance)
        if payment.status is not InvoiceStatus.PAID:
            return merged
        # Still held after "confirming" with this id: a claimed id was not this invoice's purchaseId; one RuStore
        # reported may only not show yet (API.md does not say a confirm shows at once), so it is tried again later.
        logger.warning("confirm left the invoice PAID", invoice_id=doc["invoice_id"], source=origin)
        doc = await mark_wrong(db, again.purchase, purchase_id, now) if origin == "claim" else again.purchase
        outcome = replace(merged, purchase=doc)
    logger.warning("held purchase has no usable purchaseId yet; waiting for evidence", invoice_id=doc["invoice_id"])
    await note_check_failure(db, doc, now, "no purchaseId to confirm with")
    return replace(outcome, purchase=await db[COLLECTION].find_one({"_id": doc["_id"]}) or doc)
