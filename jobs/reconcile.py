"""The one re-check loop behind `purchase-reconcile` and `subscription-reconcile`: each job configures it.

A job names what is due, how one item is checked at RuStore (through the same path as verify), how a
failed check is scheduled again and how an answered one is counted. The loop owns the rules both
jobs share, so they cannot drift:

- RuStore unreachable (`RuStoreUnavailable`): the item's check is rescheduled (its own counter does
  not grow when the failure is a RuStore-wide outage); after OUTAGE_LIMIT such failures in a row the
  run stops early (`stopped_early`) instead of hammering RuStore. What it did not reach stays due, and
  the outage-recovery pass re-checks everything recorded during the outage as soon as RuStore answers.
- RuStore refusing our credentials or settings (`RuStoreAuthError`, `RuStoreConfigError`): no item can
  fix that, so the item stays due and the run stops at once, with an error log.
- A permanent answer (a `DomainError` or another `RuStoreError`: unknown to RuStore, another app, a
  product no longer sold...): the item is given up (`next_check_at` cleared, `last_error` kept).
- Anything else (a bug, a broken document): logged, rescheduled with backoff, and the run goes on;
  one bad item never starves the ones behind it.

An item a job can finish without RuStore (`local`: a refunded purchase's recorded take-back) is not a
RuStore check: none of these rules apply to it, and a failure there ends the run as any store failure does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from loguru import logger

from documents.common import DomainError
from rustore import RuStoreAuthError, RuStoreConfigError, RuStoreError, RuStoreUnavailable

OUTAGE_LIMIT = 3  # consecutive "RuStore unreachable" answers that end a run


@dataclass(frozen=True)
class Reconcile:
    """One reconcile job's configuration (see the module docstring for what the loop does with it)."""

    kind: str  # "purchase" / "subscription", for logs
    key: str  # the document field that names an item in logs
    collection: str
    due: Callable[[Any, datetime], Awaitable[list[dict]]]  # (ctx, now) -> due documents, most overdue first
    check: Callable[[Any, dict, datetime], Awaitable[Any]]  # (ctx, doc, now) -> outcome; raises on failure
    reschedule: Callable[[Any, dict, datetime, str, bool], Awaitable[None]]  # (ctx, doc, now, error, outage)
    answered: Callable[[Any, Any, dict, datetime], Awaitable[None]]  # (ctx, outcome, summary, now): count it
    # (ctx, doc, summary, now) -> True when the item was finished without asking RuStore (a purchase's recorded
    # refund): the rules above do not apply to it, and it neither counts as nor interrupts a run of outages.
    local: Callable[[Any, dict, dict, datetime], Awaitable[bool]] | None = None


async def reconcile(ctx: Any, job: Reconcile, summary: dict, now: datetime) -> dict:
    """Check every due item once, applying the shared failure rules; `summary` is updated and returned."""
    summary.setdefault("unavailable", 0)
    summary.setdefault("given_up", 0)
    summary.setdefault("failed", 0)
    summary.setdefault("stopped_early", False)
    outages = 0
    for doc in await job.due(ctx, now):
        if job.local is not None and await job.local(ctx, doc, summary, now):
            continue
        try:
            outcome = await job.check(ctx, doc, now)
        except RuStoreUnavailable as exc:
            summary["unavailable"] += 1
            await job.reschedule(ctx, doc, now, type(exc).__name__, exc.outage)
            outages += 1
            if outages >= OUTAGE_LIMIT:
                summary["stopped_early"] = True
                break
            continue
        except (RuStoreAuthError, RuStoreConfigError) as exc:
            summary["unavailable"] += 1
            summary["stopped_early"] = True
            logger.error(f"{job.kind} checks stopped: RuStore refuses our credentials or settings", error=str(exc))
            await job.reschedule(ctx, doc, now, type(exc).__name__, False)
            break
        except (DomainError, RuStoreError) as exc:
            summary["given_up"] += 1
            logger.warning(f"{job.kind} check gave up", **{job.key: doc.get(job.key)}, error=type(exc).__name__)
            await ctx.db[job.collection].update_one({"_id": doc["_id"]},
                                                    {"$set": {"next_check_at": None, "last_error": type(exc).__name__}})
            continue
        except Exception as exc:  # noqa: BLE001 - one bad item must not starve the ones behind it
            summary["failed"] += 1
            logger.opt(exception=exc).error(f"{job.kind} check failed", **{job.key: doc.get(job.key)})
            await job.reschedule(ctx, doc, now, type(exc).__name__, False)
            continue
        outages = 0
        await job.answered(ctx, outcome, summary, now)
    return summary
