"""APScheduler wiring: every registered job on its interval, inside the running event loop."""

from __future__ import annotations

from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from jobs.runner import Job, run_job


def start_scheduler(ctx: Any, jobs: list[Job]) -> AsyncIOScheduler:
    """Start an AsyncIOScheduler running each job every `settings.<interval_setting>` seconds."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    for job in jobs:
        interval = int(getattr(ctx.settings, job.interval_setting))
        if interval <= 0:
            continue  # an interval of 0 switches the job off
        scheduler.add_job(
            run_job, "interval", seconds=interval, args=[ctx, job], id=job.name, name=job.name,
            max_instances=1, coalesce=True, misfire_grace_time=interval,
        )
    scheduler.start()
    return scheduler
