"""Job `generation-repair`: fail generations a crash left pending and give their points back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from loguru import logger

from core.metrics import GENERATIONS, REPAIR_SKIPPED
from documents import generations as generations_doc
from jobs.runner import Job

# A live request ends within AI_TIMEOUT_S (plus a card render); twice that plus a margin means
# the process handling it died, and failing it then cannot race a request that is still working.
MARGIN = timedelta(seconds=60)


def stale_after(settings: Any) -> timedelta:
    """How long a generation may stay pending before the job declares it abandoned."""
    return timedelta(seconds=2 * float(settings.ai_timeout_s)) + MARGIN


async def run(ctx: Any) -> dict:
    """Fail stale pending generations and settle every refund still due; skip (and report) users that fail."""
    summary = await generations_doc.repair_generations(ctx.db, now=ctx.now(), stale_after=stale_after(ctx.settings))
    for provider, count in summary["abandoned_by_provider"].items():
        GENERATIONS.labels(provider, "abandoned").inc(count)
    skipped = summary.pop("skipped")
    for user_id, reason in skipped.items():
        logger.error("generation-repair skipped user {}: {}", user_id, reason)  # once per user and run
    REPAIR_SKIPPED.labels("generation-repair").set(len(skipped))
    return {key: value for key, value in summary.items() if key != "abandoned_by_provider"} | {
        "users_skipped": len(skipped)}


JOB = Job("generation-repair", run, "generation_repair_interval_s")
