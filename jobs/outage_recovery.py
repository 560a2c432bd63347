"""Recovery after a RuStore outage is an event: re-check everything recorded during it, oldest first, at a bounded rate.

`OutageRecovery` listens to the client's circuit breaker. From the first failure that looks like an
outage it keeps a task alive that tries the oldest recorded item every RUSTORE_RECOVERY_PROBE_S (or
as soon as an open breaker allows a trial call); the first call that succeeds is the recovery, and
the pass then goes through every item recorded during the outage: purchases whose check failed
because RuStore was unreachable (claims recorded by verify, webhooks, jobs), holds awaiting
confirmation, subscriptions whose check failed the same way, and notifications deferred by the
outage, ordered by age, at most RUSTORE_RECOVERY_RATE_PER_S items per second. Each check goes through
the same exactly-once path as verify, webhooks and jobs. A check failing with the outage again ends
the pass (nothing's backoff grows); a check failing on its own is backed off alone. The time from
recovery to each item settling is `rustore_outage_to_settled_seconds`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from loguru import logger

from core.metrics import RUSTORE_OUTAGE_TO_SETTLED
from core.webhook_wiring import webhook_processor
from documents import subscriptions as subscriptions_doc
from documents import webhooks
from documents.common import acquire_lease, release_lease
from documents.purchases import COLLECTION as PURCHASES
from documents.purchases import GRANTED, note_check_failure, verify_invoice
from documents.subscriptions import sync_subscription
from jobs.runner import OWNER
from rustore import RuStoreUnavailable

OUTAGE_ERRORS = "RuStoreUnavailable|RuStoreBreakerOpen"  # what verify/jobs/webhooks record when RuStore is unreachable
BATCH = 500  # items per pass; a pass that finds more simply runs again
CONCURRENCY = 8  # re-checks in flight at once: the rate setting bounds RuStore's load, this one our store's
LEASE = "outage-recovery"


@dataclass(frozen=True)
class Item:
    """One thing recorded during an outage: its kind, age and stored document."""

    kind: str  # purchase / subscription / webhook
    age: datetime
    doc: dict

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.doc['_id']}"


def _age(doc: dict, *fields: str) -> datetime:
    for name in fields:
        value = doc.get(name)
        if isinstance(value, datetime):
            return value.replace(tzinfo=None)
    generated = getattr(doc.get("_id"), "generation_time", None)
    return generated.replace(tzinfo=None) if generated else datetime.min


async def recorded_items(db: Any, limit: int = BATCH) -> list[Item]:
    """Everything an outage left to re-check, oldest first."""
    regex = {"$regex": OUTAGE_ERRORS}
    purchases = await db[PURCHASES].find(
        {"next_check_at": {"$ne": None}, "$or": [{"last_error": regex}, {"needs_confirmation": True}]},
        {"history": 0}).limit(limit).to_list(limit)
    subs = await db[subscriptions_doc.COLLECTION].find(
        {"next_check_at": {"$ne": None}, "last_error": regex}, {"history": 0, "granted_periods": 0}
    ).limit(limit).to_list(limit)
    deferred = await db[webhooks.COLLECTION].find(
        {"status": webhooks.FAILED, "last_error": {"$regex": f"^({OUTAGE_ERRORS})"}}, {"_id": 1, "received_at": 1}
    ).limit(limit).to_list(limit)
    items = [Item("purchase", _age(d, "created_at"), d) for d in purchases]
    items += [Item("subscription", _age(d, "created_at", "observed_at"), d) for d in subs]
    items += [Item("webhook", _age(d, "received_at"), d) for d in deferred]
    items.sort(key=lambda item: item.age)
    return items[:limit]


class OutageRecovery:
    """The per-process coordinator: started by the breaker's outage events, ends when nothing is left."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.recovered_at: float | None = None  # monotonic time RuStore answered again
        self.passes = 0
        self._task: asyncio.Task | None = None
        self._closed = False
        self._probed: set[str] = set()  # items that failed as the probe: tried last next time
        self._wake = asyncio.Event()
        ctx.rustore.breaker.add_listener(self._on_event)

    def _on_event(self, event: str) -> None:
        if event in ("recovered", "closed") and self.recovered_at is None:
            self.recovered_at = time.monotonic()
        if event in ("outage", "open", "recovered", "closed"):
            self._wake.set()
            self.start()

    def start(self) -> None:
        """Make sure the recovery task runs (idempotent)."""
        if self._closed or (self._task is not None and not self._task.done()):
            return
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def wait_idle(self, timeout_s: float) -> None:
        """Wait until the task has finished (tests and the bench)."""
        if self._task is not None:
            await asyncio.wait_for(asyncio.shield(self._task), timeout_s)

    async def close(self) -> None:
        """Stop the task (shutdown)."""
        self._closed = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        settings = self.ctx.settings
        handled: set[str] = set()
        try:
            napped = False
            while True:
                if not napped:
                    await self._wait_for_a_chance()
                result = await self.run_pass(handled)
                napped = False
                if result["checked"] or (not result["stopped"] and not self.ctx.rustore.outage_active):
                    if not result["checked"]:
                        break  # nothing left (or another process holds the lease and RuStore answers again)
                    continue
                # No call got through (still down, a trial in flight elsewhere, nothing to probe with, another
                # process's lease): pause before trying again, never spin.
                probe_s = float(settings.rustore_recovery_probe_s)
                breaker = self.ctx.rustore.breaker
                if breaker.state == "closed":
                    await self._nap(probe_s)
                    napped = True
                elif breaker.remaining_s() <= 0:
                    await self._nap(min(probe_s, 1.0))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the regular jobs still finish everything; log and stop
            logger.opt(exception=exc).error("outage recovery failed")
        finally:
            self.recovered_at = None
            self._probed.clear()

    async def _nap(self, seconds: float) -> None:
        """Sleep, waking early when the breaker changes or someone's call succeeds."""
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), max(seconds, 0.01))
        except TimeoutError:
            pass

    async def _wait_for_a_chance(self) -> None:
        """During an outage: until an open breaker allows a trial call, or one probe interval while it stays closed."""
        breaker = self.ctx.rustore.breaker
        while self.ctx.rustore.outage_active or breaker.state != "closed":
            probe_s = float(self.ctx.settings.rustore_recovery_probe_s)
            wait = breaker.remaining_s() if breaker.state != "closed" else probe_s
            if wait <= 0:
                return
            await self._nap(wait)
            if breaker.state != "closed" and breaker.remaining_s() > 0:
                continue  # (re)opened meanwhile: wait for its new end
            return

    async def run_pass(self, handled: set[str]) -> dict:
        """One pass over what the outage recorded (under a lease, so one process does it); a summary."""
        ctx = self.ctx
        summary = {"checked": 0, "settled": 0, "failed_alone": 0, "stopped": False, "lease_busy": False}
        if not await acquire_lease(ctx.db, f"job:{LEASE}", OWNER, ctx.now(), timedelta(minutes=5)):
            summary["lease_busy"] = True
            return summary
        self.passes += 1
        try:
            items = [item for item in await recorded_items(ctx.db) if item.key not in handled]
            items.sort(key=lambda item: item.key in self._probed)  # stable: age order, failed probes last
            interval = 1.0 / max(float(ctx.settings.rustore_recovery_rate_per_s), 0.001)
            await self._paced(items, handled, interval, summary)
        finally:
            await release_lease(ctx.db, f"job:{LEASE}", OWNER)
        if summary["checked"] or summary["stopped"]:
            logger.info("outage recovery pass", **summary)
        return summary

    async def _paced(self, items: list[Item], handled: set[str], interval: float, summary: dict) -> None:
        """The first item alone (the probe), then the rest started `interval` apart, CONCURRENCY at most in flight."""
        slots = asyncio.Semaphore(CONCURRENCY)
        running: list[asyncio.Task] = []

        async def one(item: Item) -> None:
            try:
                outcome = await self._check(item)
            finally:
                slots.release()
            if outcome == "outage":
                self._probed.add(item.key)
                summary["stopped"] = True
                return
            handled.add(item.key)
            summary["checked"] += 1
            if outcome == "settled":
                summary["settled"] += 1
                if self.recovered_at is not None:
                    RUSTORE_OUTAGE_TO_SETTLED.observe(max(0.0, time.monotonic() - self.recovered_at))
            elif outcome == "failed_alone":
                summary["failed_alone"] += 1

        started = time.monotonic()
        try:
            for index, item in enumerate(items):
                await asyncio.sleep(max(0.0, started + index * interval - time.monotonic()))
                await slots.acquire()
                if summary["stopped"]:
                    slots.release()
                    break
                if index == 0:
                    await one(item)  # RuStore may still be down: one call finds out, not CONCURRENCY of them
                else:
                    running.append(asyncio.ensure_future(one(item)))
        finally:
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    async def _check(self, item: Item) -> str:
        """settled / pending / failed_alone / outage / error for one item."""
        ctx = self.ctx
        try:
            if item.kind == "webhook":
                return await self._webhook(item)
            if item.kind == "purchase":
                doc = item.doc
                outcome = await verify_invoice(ctx.db, ctx.rustore, doc["invoice_id"], sandbox=doc["sandbox"], claim=None,
                                               products=ctx.products, policy=ctx.purchase_policy, now=ctx.now(),
                                               source="recovery")
                state = outcome.purchase.get("state")
                held = outcome.purchase.get("needs_confirmation")
                return "settled" if state in GRANTED and not held or state not in ("pending", *GRANTED) else "pending"
            await sync_subscription(ctx.db, ctx.rustore, item.doc, products=ctx.products, policy=ctx.purchase_policy,
                                    now=ctx.now(), source="recovery")
            return "settled"
        except RuStoreUnavailable as exc:
            if exc.outage:
                return "outage"  # still down: nothing's backoff grows, the next probe tries again
            await self._failed_alone(item, exc)
            return "failed_alone"
        except Exception as exc:  # noqa: BLE001 - permanent or unexpected: the regular job decides; go on
            logger.warning("outage recovery could not check an item", item=item.key, error=type(exc).__name__)
            return "error"

    async def _failed_alone(self, item: Item, exc: RuStoreUnavailable) -> None:
        ctx = self.ctx
        if item.kind == "purchase":
            doc = await ctx.db[PURCHASES].find_one({"_id": item.doc["_id"]}) or item.doc
            await note_check_failure(ctx.db, doc, ctx.now(), type(exc).__name__,
                                     max_backoff=timedelta(seconds=ctx.settings.purchase_check_backoff_max_s))
        elif item.kind == "subscription":
            await subscriptions_doc.note_check_failure(ctx.db, item.doc, ctx.now(), type(exc).__name__)

    async def _webhook(self, item: Item) -> str:
        ctx = self.ctx
        now = ctx.now()
        await ctx.db[webhooks.COLLECTION].update_one({"_id": item.doc["_id"], "status": webhooks.FAILED},
                                                   {"$set": {"next_attempt_at": now}})
        result = await webhook_processor(ctx).process(item.doc["_id"])
        if result.outcome == "processed":
            return "settled"
        if result.outcome == "failed" and self.ctx.rustore.outage_active:
            return "outage"
        return "failed_alone" if result.outcome == "failed" else "error"
