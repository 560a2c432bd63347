"""Job `webhook-retry`: process RuStore notifications that are due (failed past backoff, never run, lease expired).

The webhook handler persists each notification and tries it once inline; this job picks up
everything that attempt did not finish: failures waiting out their backoff, events whose
process died between persisting and processing, and claims whose lease ran out. It also deletes
processed notifications past their 90-day retention.
"""

from __future__ import annotations

from typing import Any

from core.metrics import WEBHOOK_LAG, WEBHOOKS
from documents.webhook_events import purge_expired
from documents.webhook_processing import ProcessResult, WebhookProcessor
from jobs.runner import Job

BATCH = 100  # sequential; during an outage each attempt fails fast on the open circuit breaker
PURGE_BATCH = 1000
COUNTED = ("processed", "failed", "dead")


def observe(result: ProcessResult) -> None:
    """Count an attempt's outcome and, once applied, how long after receipt it was."""
    if result.outcome in COUNTED:
        WEBHOOKS.labels(result.outcome).inc()
    if result.outcome == "processed" and result.lag_s is not None:
        WEBHOOK_LAG.observe(max(result.lag_s, 0.0))


def webhook_processor(ctx: Any) -> WebhookProcessor:
    """The processor for this process's context; the handler's inline attempt uses the same one."""
    return WebhookProcessor(
        db=ctx.db, client=ctx.rustore, products=ctx.products, policy=ctx.purchase_policy, clock=ctx.now,
        max_attempts=max(1, int(ctx.settings.webhook_max_attempts)), observe=observe,
    )


async def run(ctx: Any) -> dict:
    """Process up to BATCH due notifications, then purge expired ones; counts per outcome."""
    summary = await webhook_processor(ctx).process_due(BATCH)
    return summary | {"purged": await purge_expired(ctx.db, ctx.now(), PURGE_BATCH)}


JOB = Job("webhook-retry", run, "webhook_retry_interval_s")
