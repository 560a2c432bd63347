"""Job `purchase-reconcile`: finish purchases that are not final (pending, held for confirmation, claimed during an outage).

The loop and its failure rules are `jobs.reconcile`'s (shared with `subscription-reconcile`). A
refunded or reversed purchase that is still due is finished locally (RuStore's answer is final; its
record says what to take back). An unowned purchase is asked about at most UNOWNED_PURCHASE_MAX_CHECKS
times (answered checks), then left for its buyer or a notification. Holds unconfirmed for over three
hours are counted and logged as errors at the end of every run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from loguru import logger
from pymongo import ASCENDING

from core.metrics import HOLDS_UNCONFIRMED
from documents.purchases import COLLECTION, REVOKED, note_check_failure, note_unowned_check, settle_revocation, verify_invoice
from jobs.reconcile import Reconcile, reconcile
from jobs.runner import Job

BATCH = 200
HOLD_ALARM = timedelta(hours=3)  # RuStore reverses an unconfirmed hold after 6 hours


async def alarm_old_holds(db: Any, now: datetime) -> int:
    """Count (metric) and log as errors the holds older than 3 hours still not confirmed at RuStore."""
    old = await db[COLLECTION].find(
        {"needs_confirmation": True, "state": "paid", "held_since": {"$lte": now - HOLD_ALARM}},
        {"invoice_id": 1, "held_since": 1, "last_error": 1}).to_list(BATCH)
    for doc in old:
        logger.error("two-step hold unconfirmed for over 3 hours; RuStore reverses it at 6",
                     invoice_id=doc["invoice_id"], held_since=str(doc["held_since"]), last_error=doc.get("last_error"))
    HOLDS_UNCONFIRMED.set(len(old))
    return len(old)


async def _due(ctx: Any, now: datetime) -> list[dict]:
    cursor = ctx.db[COLLECTION].find({"next_check_at": {"$lte": now}}).sort("next_check_at", ASCENDING)
    return await cursor.limit(BATCH).to_list(BATCH)


async def _local(ctx: Any, doc: dict, summary: dict, now: datetime) -> bool:
    if doc.get("state") not in REVOKED:
        return False
    # Refunded/reversed is final at RuStore: finish the take-back (or its one re-check) from the record.
    await settle_revocation(ctx.db, doc, ctx.purchase_policy, now)
    summary["revocations"] = summary.get("revocations", 0) + 1
    return True


async def _check(ctx: Any, doc: dict, now: datetime) -> Any:
    return await verify_invoice(ctx.db, ctx.rustore, doc["invoice_id"], sandbox=doc["sandbox"], claim=None,
                                products=ctx.products, policy=ctx.purchase_policy, now=now, source="job")


def _max_backoff(ctx: Any) -> timedelta:
    return timedelta(seconds=ctx.settings.purchase_check_backoff_max_s)


async def _reschedule(ctx: Any, doc: dict, now: datetime, error: str, outage: bool) -> None:
    await note_check_failure(ctx.db, doc, now, error, outage=outage, max_backoff=_max_backoff(ctx))


async def _answered(ctx: Any, outcome: Any, summary: dict, now: datetime) -> None:
    summary["checked"] += 1
    summary["credited"] += int(outcome.credited_now)
    if outcome.purchase.get("user_id") is None and \
            await note_unowned_check(ctx.db, outcome.purchase, now, ctx.settings.unowned_purchase_max_checks):
        summary["unowned_stopped"] = summary.get("unowned_stopped", 0) + 1
        return
    if outcome.purchase["state"] == "pending":
        summary["still_pending"] += 1
        await note_check_failure(ctx.db, outcome.purchase, now, "still pending at RuStore", max_backoff=_max_backoff(ctx))


PURCHASES = Reconcile("purchase", "invoice_id", COLLECTION, _due, _check, _reschedule, _answered, local=_local)


async def run(ctx: Any) -> dict:
    """Re-check every purchase whose next check is due, through the same path as verify."""
    if ctx.rustore is None:
        return {"skipped": "rustore not configured"}
    now = ctx.now()
    summary = {"checked": 0, "credited": 0, "still_pending": 0, "unavailable": 0, "given_up": 0, "stopped_early": False}
    await reconcile(ctx, PURCHASES, summary, now)
    summary["holds_unconfirmed_over_3h"] = await alarm_old_holds(ctx.db, now)
    return summary


JOB = Job("purchase-reconcile", run, "purchase_reconcile_interval_s")
