"""Job `ledger-repair`: write out ledger entries that a crash left in a wallet's outbox."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from documents import ledger
from jobs.runner import Job

# A live request flushes its own outbox within milliseconds; only older leftovers need the job.
SETTLE = timedelta(seconds=30)


async def run(ctx: Any) -> dict:
    """Flush every wallet whose outbox has been pending longer than SETTLE."""
    written = await ledger.repair_pending(ctx.db, older_than=SETTLE, now=ctx.now())
    return {"entries_written": written}


JOB = Job("ledger-repair", run, "ledger_repair_interval_s")
