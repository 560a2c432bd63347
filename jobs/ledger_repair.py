"""Job `ledger-repair`: write out ledger entries that a crash left in a wallet's outbox."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from loguru import logger

from core.metrics import REPAIR_SKIPPED
from documents import wallet
from jobs.runner import Job

# A live request flushes its own outbox within milliseconds; only older leftovers need the job.
SETTLE = timedelta(seconds=30)


async def run(ctx: Any) -> dict:
    """Flush every wallet whose outbox has been pending longer than SETTLE; skip (and report) users that fail."""
    report = await wallet.repair_users(ctx.db, older_than=SETTLE, now=ctx.now())
    for user_id, reason in report.skipped.items():
        logger.error("ledger-repair skipped user {}: {}", user_id, reason)  # once per user and run
    REPAIR_SKIPPED.labels("ledger-repair").set(len(report.skipped))
    return {"entries_written": report.written, "users_skipped": len(report.skipped)}


JOB = Job("ledger-repair", run, "ledger_repair_interval_s")
