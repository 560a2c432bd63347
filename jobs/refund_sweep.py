"""Job `refund-sweep`: catch refunds and reversals through RuStore's daily invoice lists (P4), even when no webhook came."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

from loguru import logger

from documents.errors import DomainError
from documents.purchase_sync import verify_invoice
from documents.purchases import COLLECTION, GRANTED
from jobs.runner import Job
from rustore import InvoiceStatus, RuStoreUnavailable

MOSCOW = timezone(timedelta(hours=3))  # P4 dates are RuStore's (Moscow) calendar days
STATUSES = (InvoiceStatus.REFUNDED, InvoiceStatus.REVERSED)


async def run(ctx: Any) -> dict:
    """For each of the last REFUND_SWEEP_DAYS invoice dates, re-check our granted purchases RuStore lists as refunded."""
    if ctx.rustore is None:
        return {"skipped": "rustore not configured"}
    db, now = ctx.db, ctx.now()
    today = now.astimezone(MOSCOW).date()
    summary = {"listed": 0, "revoked": 0, "unavailable_days": 0}
    environments = (False, True) if ctx.settings.allow_sandbox else (False,)
    for sandbox in environments:
        for days_back in range(ctx.settings.refund_sweep_days):
            day = today - timedelta(days=days_back)
            try:
                async for payment in ctx.rustore.list_payments(day, STATUSES, page_size=100, sandbox=sandbox):
                    summary["listed"] += 1
                    known = await db[COLLECTION].find_one(
                        {"invoice_id": payment.invoice_id, "sandbox": sandbox, "state": {"$in": list(GRANTED)}},
                        {"_id": 1})
                    if known is None:
                        continue  # never granted (or already revoked): nothing to take back
                    try:
                        await verify_invoice(db, ctx.rustore, payment.invoice_id, sandbox=sandbox, claim=None,
                                             products=ctx.products, policy=ctx.purchase_policy, now=now, source="refund-sweep")
                        summary["revoked"] += 1
                    except DomainError as exc:
                        logger.warning("refund sweep could not apply", invoice_id=payment.invoice_id,
                                       error=type(exc).__name__)
            except RuStoreUnavailable:
                summary["unavailable_days"] += 1
    return summary


JOB = Job("refund-sweep", run, "refund_sweep_interval_s")
