"""Job `purchase-reconcile`: finish purchases that are not final (pending, held for confirmation, claimed during an outage).

A refunded or reversed purchase that is still due is finished locally (RuStore's answer is final;
its record says what to take back). An unowned purchase is asked about at most
UNOWNED_PURCHASE_MAX_CHECKS times (answered checks), then left for its buyer or a notification.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from loguru import logger
from pymongo import ASCENDING

from core.metrics import HOLDS_UNCONFIRMED
from documents.common import DomainError
from documents.purchases import COLLECTION, REVOKED, note_check_failure, note_unowned_check, settle_revocation, verify_invoice
from jobs.runner import Job
from rustore import RuStoreAuthError, RuStoreConfigError, RuStoreError, RuStoreUnavailable

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


async def run(ctx: Any) -> dict:
    """Re-check every purchase whose next check is due, through the same path as verify."""
    if ctx.rustore is None:
        return {"skipped": "rustore not configured"}
    db, now = ctx.db, ctx.now()
    max_backoff = timedelta(seconds=ctx.settings.purchase_check_backoff_max_s)
    due = await db[COLLECTION].find({"next_check_at": {"$lte": now}}).sort("next_check_at", ASCENDING) \
        .limit(BATCH).to_list(BATCH)
    summary = {"checked": 0, "credited": 0, "still_pending": 0, "unavailable": 0, "given_up": 0, "stopped_early": False}
    for doc in due:
        if doc.get("state") in REVOKED:
            # Refunded/reversed is final at RuStore: finish the take-back (or its one re-check) from the record.
            await settle_revocation(db, doc, ctx.purchase_policy, now)
            summary["revocations"] = summary.get("revocations", 0) + 1
            continue
        try:
            outcome = await verify_invoice(db, ctx.rustore, doc["invoice_id"], sandbox=doc["sandbox"], claim=None,
                                           products=ctx.products, policy=ctx.purchase_policy, now=now, source="job")
        except RuStoreUnavailable as exc:
            summary["unavailable"] += 1
            await note_check_failure(db, doc, now, type(exc).__name__, outage=exc.outage, max_backoff=max_backoff)
            continue
        except (RuStoreAuthError, RuStoreConfigError) as exc:
            # Our credentials or settings, not this purchase: keep it due, and stop, since every check would fail alike.
            summary["unavailable"] += 1
            summary["stopped_early"] = True
            logger.error("purchase checks stopped: RuStore refuses our credentials or settings", error=str(exc))
            await note_check_failure(db, doc, now, type(exc).__name__)
            break
        except (DomainError, RuStoreError) as exc:
            # Permanent: RuStore says it does not exist, another app, a product we do not sell...
            summary["given_up"] += 1
            logger.warning("purchase check gave up", invoice_id=doc["invoice_id"], error=type(exc).__name__)
            await db[COLLECTION].update_one({"_id": doc["_id"]},
                                            {"$set": {"next_check_at": None, "last_error": type(exc).__name__}})
            continue
        except Exception as exc:  # noqa: BLE001 - one bad purchase must not starve the ones behind it
            summary["errors"] = summary.get("errors", 0) + 1
            logger.opt(exception=exc).error("purchase check failed", invoice_id=doc["invoice_id"])
            await note_check_failure(db, doc, now, type(exc).__name__)
            continue
        summary["checked"] += 1
        summary["credited"] += int(outcome.credited_now)
        if outcome.purchase.get("user_id") is None and \
                await note_unowned_check(db, outcome.purchase, now, ctx.settings.unowned_purchase_max_checks):
            summary["unowned_stopped"] = summary.get("unowned_stopped", 0) + 1
            continue
        if outcome.purchase["state"] == "pending":
            summary["still_pending"] += 1
            await note_check_failure(db, outcome.purchase, now, "still pending at RuStore", max_backoff=max_backoff)
    summary["holds_unconfirmed_over_3h"] = await alarm_old_holds(db, now)
    return summary


JOB = Job("purchase-reconcile", run, "purchase_reconcile_interval_s")
