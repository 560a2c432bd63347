"""Job `subscription-reconcile`: re-check subscriptions whose next check is due, through the same path as verify.

`next_check_at` (see `documents.subscriptions.store.next_check`) encodes what to watch: a period ending
(checked daily and just after its end, so renewals are granted and ended ones read ended), grace and
hold (every few hours), pending first payments and claims made while RuStore was down (backoff from
one minute), unacknowledged subscriptions (acknowledgement retried with backoff) and final ones not
yet shown on their user. First, refunds a crash left recorded but not taken back are settled
(`subscription_refunds.settle_due`, no RuStore call, so an outage never delays them); every sync also
settles refunds recorded while it granted. One bad subscription never stops the run; RuStore outages back off per
subscription, and a run stops early after a few consecutive outages (at once when RuStore refuses our
credentials, which no subscription can fix) instead of hammering RuStore.
"""

from __future__ import annotations

from typing import Any

from loguru import logger

from documents import subscriptions as subscriptions_doc
from documents.common import DomainError
from documents.subscriptions import sync_subscription
from jobs.runner import Job
from rustore import RuStoreAuthError, RuStoreConfigError, RuStoreError, RuStoreUnavailable

BATCH = 200
OUTAGE_LIMIT = 3  # consecutive "RuStore unreachable" answers that end this run


async def run(ctx: Any) -> dict:
    """Sync every subscription whose check is due; one summary of what happened."""
    if ctx.rustore is None:
        return {"skipped": "rustore not configured"}
    db, now = ctx.db, ctx.now()
    summary = {"checked": 0, "points_granted": 0, "points_clawed_back": 0, "unavailable": 0, "given_up": 0, "failed": 0,
               "stopped_early": False}
    try:
        _, summary["points_clawed_back"] = await subscriptions_doc.settle_due(db, ctx.purchase_policy, now, BATCH)
    except Exception as exc:  # noqa: BLE001 - they stay due; the renewals below must still be checked
        summary["failed"] += 1
        logger.opt(exception=exc).error("settling recorded subscription refunds failed")
    outages = 0
    for doc in await subscriptions_doc.due_for_check(db, now, BATCH):
        try:
            outcome = await sync_subscription(db, ctx.rustore, doc, products=ctx.products, policy=ctx.purchase_policy,
                                              now=now, source="job")
        except RuStoreUnavailable as exc:
            summary["unavailable"] += 1
            await subscriptions_doc.note_check_failure(db, doc, now, type(exc).__name__, outage=exc.outage)
            outages += 1
            if outages >= OUTAGE_LIMIT:
                summary["stopped_early"] = True
                break
            continue
        except (RuStoreAuthError, RuStoreConfigError) as exc:
            # Our credentials or settings, not this subscription: keep it due, and stop, since every check would fail alike.
            summary["unavailable"] += 1
            summary["stopped_early"] = True
            logger.error("subscription checks stopped: RuStore refuses our credentials or settings", error=str(exc))
            await subscriptions_doc.note_check_failure(db, doc, now, type(exc).__name__)
            break
        except (DomainError, RuStoreError) as exc:
            # Permanent: RuStore does not know it, another app, sandbox now refused, a product we stopped selling...
            summary["given_up"] += 1
            logger.warning("subscription check gave up", purchase_id=doc["purchase_id"], error=type(exc).__name__)
            await db[subscriptions_doc.COLLECTION].update_one(
                {"_id": doc["_id"]}, {"$set": {"next_check_at": None, "last_error": type(exc).__name__}})
            continue
        except Exception as exc:  # noqa: BLE001 - one broken document must not stop the others
            summary["failed"] += 1
            logger.opt(exception=exc).error("subscription check failed", purchase_id=doc["purchase_id"])
            await subscriptions_doc.note_check_failure(db, doc, now, type(exc).__name__)
            continue
        outages = 0
        summary["checked"] += 1
        summary["points_granted"] += outcome.points_granted
        summary["points_clawed_back"] += outcome.points_clawed_back
    return summary


JOB = Job("subscription-reconcile", run, "subscription_reconcile_interval_s")
