"""Job `generation-repair`: fail generations a crash left pending and give their points back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from core.metrics import GENERATIONS
from documents import generations
from jobs.runner import Job

# A live request ends within AI_TIMEOUT_S (plus a card render); twice that plus a margin means
# the process handling it died, and failing it then cannot race a request that is still working.
MARGIN = timedelta(seconds=60)


def stale_after(settings: Any) -> timedelta:
    """How long a generation may stay pending before the job declares it abandoned."""
    return timedelta(seconds=2 * float(settings.ai_timeout_s)) + MARGIN


async def run(ctx: Any) -> dict:
    """Fail stale pending generations and settle every refund still due."""
    summary = await generations.repair_generations(ctx.db, now=ctx.now(), stale_after=stale_after(ctx.settings))
    for provider, count in summary["abandoned_by_provider"].items():
        GENERATIONS.labels(provider, "abandoned").inc(count)
    return {key: value for key, value in summary.items() if key != "abandoned_by_provider"}


JOB = Job("generation-repair", run, "generation_repair_interval_s")
