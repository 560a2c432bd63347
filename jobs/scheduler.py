"""APScheduler wiring: every registered job on its interval (or its own trigger), inside the running event loop."""

from __future__ import annotations

from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from jobs.runner import Job, run_job

# A daily job whose moment passed while the loop was busy still runs if it is at most this late.
TRIGGER_GRACE_S = 3600


def start_scheduler(ctx: Any, jobs: list[Job]) -> AsyncIOScheduler:
    """Start an AsyncIOScheduler running each job on `job.trigger(settings)` or every `settings.<interval_setting>` s."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    for job in jobs:
        if job.trigger is not None:
            trigger = job.trigger(ctx.settings)
            if trigger is not None:  # None switches the job off
                scheduler.add_job(run_job, trigger, args=[ctx, job], id=job.name, name=job.name,
                                  max_instances=1, coalesce=True, misfire_grace_time=TRIGGER_GRACE_S)
            continue
        interval = int(getattr(ctx.settings, job.interval_setting))
        if interval <= 0:
            continue  # an interval of 0 switches the job off
        scheduler.add_job(
            run_job, "interval", seconds=interval, args=[ctx, job], id=job.name, name=job.name,
            max_instances=1, coalesce=True, misfire_grace_time=interval,
        )
    scheduler.start()
    return scheduler
