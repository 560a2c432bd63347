"""Job `ledger-audit`: recompute every balance from its entries and export the drift as a metric."""

from __future__ import annotations

from typing import Any

from loguru import logger

from core.metrics import LEDGER_DRIFT
from documents.wallet import verify_ledger
from jobs.runner import Job


async def run(ctx: Any) -> dict:
    """Audit the whole ledger; alert-worthy drift is logged as an error and exported."""
    audit = await verify_ledger(ctx.db, now=ctx.now())
    drifted = len({d.user_id for d in audit.drift})
    LEDGER_DRIFT.set(drifted)
    if drifted:
        logger.error("ledger drift found", users=drifted, kinds=sorted({d.kind for d in audit.drift}))
    return {"users_checked": audit.users_checked, "entries_checked": audit.entries_checked,
            "drifted_users": drifted, "pending_users": len(audit.pending)}


JOB = Job("ledger-audit", run, "ledger_audit_interval_s", lease_s=3600)
