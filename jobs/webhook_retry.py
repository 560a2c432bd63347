"""Job `webhook-retry`: process RuStore notifications that are due (failed past backoff, never run, lease expired).

The webhook handler persists each notification and tries it once inline; this job picks up
everything that attempt did not finish: failures waiting out their backoff, events whose
process died between persisting and processing, and claims whose lease ran out. It also deletes
processed notifications past their 90-day retention.
"""

from __future__ import annotations

from typing import Any

from core.metrics import WEBHOOK_BACKLOG, WEBHOOK_DEAD
from core.webhook_wiring import webhook_processor
from documents.webhooks import backlog_counts, purge_expired
from jobs.runner import Job

BATCH = 100  # sequential; during an outage each attempt fails fast on the open circuit breaker
PURGE_BATCH = 1000


async def run(ctx: Any) -> dict:
    """Process up to BATCH due notifications, then purge expired ones; counts per outcome."""
    summary = await webhook_processor(ctx).process_due(BATCH)
    summary |= {"purged": await purge_expired(ctx.db, ctx.now(), PURGE_BATCH)}
    backlog, dead = await backlog_counts(ctx.db, ctx.now())
    WEBHOOK_BACKLOG.set(backlog)
    WEBHOOK_DEAD.set(dead)
    return summary


JOB = Job("webhook-retry", run, "webhook_retry_interval_s")
