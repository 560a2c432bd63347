"""Job `subscription-reconcile`: re-check subscriptions whose next check is due, through the same path as verify.

`next_check_at` (see `documents.subscriptions.store.next_check`) encodes what to watch: a period ending
(checked daily and just after its end, so renewals are granted and ended ones read ended), grace and
hold (every few hours), pending first payments and claims made while RuStore was down (backoff from
one minute), unacknowledged subscriptions (acknowledgement retried with backoff) and final ones not
yet shown on their user. First, refunds a crash left recorded but not taken back are settled
(`subscriptions.settle_due`, no RuStore call, so an outage never delays them); every sync also
settles refunds recorded while it granted. The loop and its failure rules (outages, credentials,
permanent answers, one bad subscription) are `jobs.reconcile`'s, shared with `purchase-reconcile`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from loguru import logger

from documents import subscriptions
from jobs.reconcile import Reconcile, reconcile
from jobs.runner import Job

BATCH = 200


async def _due(ctx: Any, now: datetime) -> list[dict]:
    return await subscriptions.due_for_check(ctx.db, now, BATCH)


async def _check(ctx: Any, doc: dict, now: datetime) -> Any:
    return await subscriptions.sync_subscription(ctx.db, ctx.rustore, doc, products=ctx.products,
                                                 policy=ctx.purchase_policy, now=now, source="job")


async def _reschedule(ctx: Any, doc: dict, now: datetime, error: str, outage: bool) -> None:
    await subscriptions.note_check_failure(ctx.db, doc, now, error, outage=outage)


async def _answered(ctx: Any, outcome: Any, summary: dict, now: datetime) -> None:
    summary["checked"] += 1
    summary["points_granted"] += outcome.points_granted
    summary["points_clawed_back"] += outcome.points_clawed_back


SUBSCRIPTIONS = Reconcile("subscription", "purchase_id", subscriptions.COLLECTION, _due, _check, _reschedule, _answered)


async def run(ctx: Any) -> dict:
    """Sync every subscription whose check is due; one summary of what happened."""
    if ctx.rustore is None:
        return {"skipped": "rustore not configured"}
    now = ctx.now()
    summary = {"checked": 0, "points_granted": 0, "points_clawed_back": 0, "unavailable": 0, "given_up": 0, "failed": 0,
               "stopped_early": False}
    try:
        _, summary["points_clawed_back"] = await subscriptions.settle_due(ctx.db, ctx.purchase_policy, now, BATCH)
    except Exception as exc:  # noqa: BLE001 - they stay due; the renewals below must still be checked
        summary["failed"] += 1
        logger.opt(exception=exc).error("settling recorded subscription refunds failed")
    return await reconcile(ctx, SUBSCRIPTIONS, summary, now)


JOB = Job("subscription-reconcile", run, "subscription_reconcile_interval_s")
