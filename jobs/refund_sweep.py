"""Job `refund-sweep`: catch refunds and reversals through RuStore's daily invoice lists (P4), even when no webhook came.

A listed invoice is either a one-time purchase (re-checked through `verify_invoice`) or a charge of a
subscription (found by the invoice id linked to one of its granted periods, or by its purchaseId), whose
period's points are then taken back (`subscriptions.refunds`); the listed record is RuStore's own answer.

Refunds can come long after the purchase, past the lists' window. So each run also takes a slow pass:
up to REFUND_SLOW_PASS_PER_RUN credited one-time purchases first seen more than REFUND_SWEEP_DAYS - 1
days ago (and less than REFUND_SLOW_PASS_MAX_DAYS), least recently checked first, are asked about one
by one by their invoice (P3). Cost: at most PER_RUN * 86400 / REFUND_SWEEP_INTERVAL_S calls a day
(20 * 96 = 1920 by default, one every 45 s on average), and each of N old purchases is re-checked every
N / 1920 days (10,000 purchases: about every 5 days); see docs/refunds.md.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from loguru import logger

from documents import subscriptions
from documents.common import DomainError
from documents.purchases import COLLECTION, GRANTED, revoke_recorded, verify_invoice
from jobs.runner import Job
from rustore import InvoiceStatus, Payment, RuStoreAuthError, RuStoreConfigError, RuStoreError, RuStoreUnavailable

MOSCOW = timezone(timedelta(hours=3))  # P4 dates are RuStore's (Moscow) calendar days
STATUSES = (InvoiceStatus.REFUNDED, InvoiceStatus.REVERSED)


async def run(ctx: Any) -> dict:
    """For each of the last REFUND_SWEEP_DAYS invoice dates, take back what refunded purchases and charges granted."""
    if ctx.rustore is None:
        return {"skipped": "rustore not configured"}
    now = ctx.now()
    today = now.astimezone(MOSCOW).date()
    summary = {"listed": 0, "revoked": 0, "subscription_refunds": 0, "points_clawed_back": 0, "unavailable_days": 0}
    # Sandbox lists too while sandbox purchases we credited could still be refunded, even with sandbox off now.
    credited_sandbox = await ctx.db[COLLECTION].find_one({"sandbox": True, "state": {"$in": list(GRANTED)}}, {"_id": 1})
    environments = (False, True) if ctx.settings.allow_sandbox or credited_sandbox else (False,)
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
    summary |= await slow_pass(ctx, now)
    return summary


async def slow_pass(ctx: Any, now: datetime) -> dict:
    """Ask RuStore (P3) about a few older credited purchases, least recently checked first; take back refunds."""
    settings, db = ctx.settings, ctx.db
    if settings.refund_slow_pass_per_run <= 0:
        return {}
    newest = now - timedelta(days=max(settings.refund_sweep_days - 1, 0))  # a day of overlap with the lists
    oldest = now - timedelta(days=settings.refund_slow_pass_max_days)
    due = await db[COLLECTION].find(
        {"state": {"$in": list(GRANTED)}, "user_id": {"$ne": None}, "created_at": {"$lt": newest, "$gte": oldest}},
        {"invoice_id": 1, "sandbox": 1},
    ).sort([("refund_checked_at", 1), ("created_at", 1)]).limit(settings.refund_slow_pass_per_run) \
        .to_list(settings.refund_slow_pass_per_run)
    summary = {"old_checked": 0, "old_revoked": 0}
    for doc in due:
        try:
            payment = await ctx.rustore.get_payment(doc["invoice_id"], sandbox=doc["sandbox"])
            if payment.status in STATUSES and str(payment.invoice_id) == str(doc["invoice_id"]):
                if await revoke_recorded(db, payment, claim=None, policy=ctx.purchase_policy, now=now,
                                         source="refund-sweep-old") is not None:
                    summary["old_revoked"] += 1
        except (RuStoreUnavailable, RuStoreAuthError, RuStoreConfigError):
            summary["old_unavailable"] = True
            break  # RuStore struggles or refuses us: the rest waits for the next run, in the same order
        except (DomainError, RuStoreError) as exc:
            logger.warning("refund slow pass could not check", invoice_id=doc["invoice_id"], error=type(exc).__name__)
        summary["old_checked"] += 1
        await db[COLLECTION].update_one({"_id": doc["_id"]}, {"$set": {"refund_checked_at": now}})
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
    charged = await subscriptions.find_charged(db, payment, sandbox)
    if charged is None:
        return  # never granted, already revoked, or a refund already recorded: nothing to take back here
    taken, _ = await subscriptions.apply_charge(db, charged["_id"], payment, policy=ctx.purchase_policy,
                                                       now=now, source="refund-sweep")
    summary["subscription_refunds"] += 1
    summary["points_clawed_back"] += taken


JOB = Job("refund-sweep", run, "refund_sweep_interval_s")
