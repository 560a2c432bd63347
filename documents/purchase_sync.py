"""Asks RuStore about an invoice and applies the answer: the path shared by verify, webhooks and jobs.

`verify_invoice` fetches the payment (P3), applies it with `purchases.apply_payment`, and for a
two-step purchase held in PAID confirms it at RuStore (P5) right after the points are safely
credited. If RuStore cannot be reached, or refuses our credentials, the claim is recorded and the
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
from documents.purchase_revocation import revoke_recorded
from documents.purchases import COLLECTION, PurchaseOutcome, apply_payment, record_unverified
from rustore import RuStoreAuthError, RuStoreNotFound, RuStoreRejected, RuStoreUnavailable

CONFIRM_RETRY = timedelta(minutes=2)
MAX_BACKOFF = timedelta(minutes=30)


def backoff(attempts: int, *, cap: timedelta = MAX_BACKOFF) -> timedelta:
    """Delay before the next check after `attempts` failed ones: 1, 2, 4 ... minutes, capped."""
    return min(cap, timedelta(minutes=2 ** min(attempts, 10)))


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
        {"$set": {"check_attempts": attempts, "last_error": error, "next_check_at": now + backoff(attempts, cap=cap)}},
    )


async def verify_invoice(
    db: Any, client: Any, invoice_id: str, *, sandbox: bool, claim: Claim | None, products: Mapping[str, Any],
    policy: PurchasePolicy, now: datetime, source: str,
) -> PurchaseOutcome:
    """Fetch an invoice from RuStore, apply it, confirm a held two-step purchase; exactly-once effects."""
    try:
        payment = await client.get_payment(invoice_id, sandbox=sandbox)
    except RuStoreNotFound:
        raise PurchaseNotFound("RuStore does not know this invoice.") from None
    except (RuStoreUnavailable, RuStoreAuthError) as exc:
        # Neither says anything about the invoice: record it (and who claims it) so the job asks
        # again later, even when a webhook was the only sign of it and later gives up.
        await record_unverified(db, invoice_id, sandbox, now, type(exc).__name__, claim)
        raise
    if str(payment.invoice_id) != str(invoice_id):
        raise PurchaseMismatch("RuStore answered for another invoice.")
    revoked = await revoke_recorded(db, payment, claim=claim, policy=policy, now=now, source=source)
    if revoked is not None:  # a refund of a bound purchase: its record decides, not today's catalog
        return revoked
    outcome = await apply_payment(db, payment, claim=claim, products=products, policy=policy, now=now, source=source)
    if outcome.purchase.get("state") == "paid" and outcome.purchase.get("needs_confirmation"):
        outcome = await confirm_held(db, client, outcome, products=products, policy=policy, now=now, source=source)
    return outcome


async def confirm_held(
    db: Any, client: Any, outcome: PurchaseOutcome, *, products: Mapping[str, Any], policy: PurchasePolicy,
    now: datetime, source: str,
) -> PurchaseOutcome:
    """Confirm a PAID hold at RuStore (points are already credited), then record RuStore's new state."""
    doc = outcome.purchase
    if not doc.get("purchase_id"):
        logger.error("held purchase has no purchaseId to confirm", invoice_id=doc["invoice_id"])
        return outcome
    try:
        await client.confirm_purchase(doc["purchase_id"], sandbox=doc["sandbox"])
    except RuStoreRejected as exc:
        # Usually "Purchase status must be PAID": confirmed elsewhere or reversed. RuStore's record decides.
        logger.info("confirm refused by RuStore", invoice_id=doc["invoice_id"], message=exc.message)
    except RuStoreUnavailable as exc:
        await note_check_failure(db, doc, now, f"confirm: {type(exc).__name__}", outage=exc.outage)
        return outcome
    try:
        payment = await client.get_payment(doc["invoice_id"], sandbox=doc["sandbox"])
    except RuStoreUnavailable as exc:
        await note_check_failure(db, doc, now, f"after confirm: {type(exc).__name__}", outage=exc.outage)
        return outcome
    again = await apply_payment(db, payment, claim=None, products=products, policy=policy, now=now, source=source)
    return replace(again, credited_now=outcome.credited_now or again.credited_now,
                   balance=again.balance if again.balance is not None else outcome.balance)
