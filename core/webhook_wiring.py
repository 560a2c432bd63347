"""Builds the webhook processor for this process's context, with its metrics: shared by the handler, the job and the admin CLI."""

from __future__ import annotations

from typing import Any

from core.metrics import WEBHOOK_LAG, WEBHOOKS
from documents.webhooks import ProcessResult, WebhookProcessor

COUNTED = ("processed", "failed", "dead")


def observe(result: ProcessResult) -> None:
    """Count an attempt's outcome and, once applied, how long after receipt it was."""
    if result.outcome in COUNTED:
        WEBHOOKS.labels(result.outcome).inc()
    if result.outcome == "processed" and result.lag_s is not None:
        WEBHOOK_LAG.observe(max(result.lag_s, 0.0))


def webhook_processor(ctx: Any) -> WebhookProcessor:
    """The processor for this process's context; the handler's inline attempt and the job use the same one."""
    return WebhookProcessor(
        db=ctx.db, client=ctx.rustore, products=ctx.products, policy=ctx.purchase_policy, clock=ctx.now,
        max_attempts=max(1, int(ctx.settings.webhook_max_attempts)), observe=observe,
    )
