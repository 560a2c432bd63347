"""Scheduled jobs: each module defines `JOB` (a name, `async run(ctx) -> summary`, an interval setting)."""

from __future__ import annotations

from jobs import (
    backup,
    event_delivery,
    generation_repair,
    ledger_audit,
    ledger_repair,
    mail_delivery,
    purchase_reconcile,
    refund_sweep,
    subscription_reconcile,
    webhook_retry,
)
from jobs.runner import Job

ALL_JOBS: list[Job] = [
    ledger_repair.JOB,
    ledger_audit.JOB,
    generation_repair.JOB,
    purchase_reconcile.JOB,
    refund_sweep.JOB,
    webhook_retry.JOB,
    subscription_reconcile.JOB,
    backup.JOB,
    event_delivery.JOB,
    mail_delivery.JOB,
]


def find_job(name: str) -> Job | None:
    """The registered job with this name, or None."""
    return next((job for job in ALL_JOBS if job.name == name), None)
