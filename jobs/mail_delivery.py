"""Job `mail-delivery`: send queued account e-mails whose first attempt failed (SMTP down, process died) once due."""

from __future__ import annotations

from typing import Any

from core.account_mail import deliver_due
from jobs.runner import Job

BATCH = 200  # sequential: a down SMTP server costs one timeout per mail, then each waits out its backoff


async def run(ctx: Any) -> dict:
    """Deliver up to BATCH due mails; counts per outcome (sent, pending = retry later, dead)."""
    return await deliver_due(ctx, BATCH)


JOB = Job("mail-delivery", run, "mail_retry_interval_s")
