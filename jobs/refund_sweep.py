"""Job `refund-sweep`: catch refunds and reversals through RuStore's daily invoice lists (P4), even when no webhook came.

A listed invoice is either a one-time purchase (re-checked through `verify_invoice`) or a charge of a
subscription (found by the invoice id linked to one of its granted periods, or by its purchaseId), whose
period's points are then taken back (`subscription_refunds`); the listed record is RuStore's own answer.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

from loguru import logger

from documents import subscription_refunds
from documents.errors import DomainError
from documents.purchase_sync import verify_invoice
from documents.purchases import COLLECTION, GRANTED
from jobs.runner import Job
from rustore import InvoiceStatus, Payment, RuStoreUnavailable

MOSCOW = timezone(timedelta(hours=3))  # P4 dates are RuStore's (Moscow) calendar days
STATUSES = (InvoiceStatus.REFUNDED, InvoiceStatus.REVERSED)


async def run(ctx: Any) -> dict:
    """For each of the last REFUND_SWEEP_DAYS invoice dates, take back what refunded purchases and charges granted."""
    if ctx.rustore is None:
        return {"skipped": "rustore not configured"}
    now = ctx.now()
    today = now.astimezone(MOSCOW).date()
    summary = {"listed": 0, "revoked": 0, "subscription_refunds": 0, "points_clawed_back": 0, "unavailable_days": 0}
    environments = (False, True) if ctx.settings.allow_sandbox else (False,)
    for sandbox in environments:
        for days_back in range(ctx.settings.refund_sweep_days):
            day = today - timedelta(days=days_back)
            try:
                async for payment in ctx.rustore.list_payments(day, STATUSES, page_size=100, sandbox=sandbox):
                    summary["listed"] += 1
                    try:
                        await _apply(ctx, payment, sandbox, now, summary)
                    except DomainError as exc:
                        logger.warning("refund sweep could not apply", invoice_id=payment.invoice_id,
                                       error=type(exc).__name__)
            except RuStoreUnavailable:
                summary["unavailable_days"] += 1
    return summary


async def _apply(ctx: Any, payment: Payment, sandbox: bool, now: Any, summary: dict) -> None:
    db = ctx.db
    known = await db[COLLECTION].find_one(
        {"invoice_id": payment.invoice_id, "sandbox": sandbox, "state": {"$in": list(GRANTED)}}, {"_id": 1})
    if known is not None:
        await verify_invoice(db, ctx.rustore, payment.invoice_id, sandbox=sandbox, claim=None,
                             products=ctx.products, policy=ctx.purchase_policy, now=now, source="refund-sweep")
        summary["revoked"] += 1
        return
    charged = await subscription_refunds.find_charged(db, payment, sandbox)
    if charged is None:
        return  # never granted, already revoked, or a refund already recorded: nothing to take back here
    taken, _ = await subscription_refunds.apply_charge(db, charged["_id"], payment, policy=ctx.purchase_policy,
                                                       now=now, source="refund-sweep")
    summary["subscription_refunds"] += 1
    summary["points_clawed_back"] += taken


JOB = Job("refund-sweep", run, "refund_sweep_interval_s")
