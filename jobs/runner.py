"""Runs one job once: under a lease, with one summary log line, never letting a failure escape."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from loguru import logger

from core.metrics import JOB_RUNS
from documents.leases import acquire_lease, release_lease

JobFn = Callable[[Any], Awaitable[dict]]
OWNER = f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Job:
    """A named job: `run(ctx) -> summary`, its interval setting (or trigger factory) and how long its lease lasts."""

    name: str
    run: JobFn
    interval_setting: str = ""
    lease_s: int = 300
    # settings -> APScheduler trigger (None = off), for jobs that run at a time of day rather than every N seconds.
    trigger: Callable[[Any], Any] | None = None


@dataclass(frozen=True)
class JobOutcome:
    """What one run did: ok / skipped (lease held elsewhere) / failed, and the job's summary."""

    name: str
    outcome: str
    summary: dict
    duration_s: float


async def run_job(ctx: Any, job: Job) -> JobOutcome:
    """Run `job` once if this process can take its lease; log and return the outcome."""
    started = time.perf_counter()
    if not await acquire_lease(ctx.db, f"job:{job.name}", OWNER, ctx.now(), timedelta(seconds=job.lease_s)):
        outcome = JobOutcome(job.name, "skipped", {"reason": "lease held by another process"}, 0.0)
    else:
        try:
            summary = await job.run(ctx)
            outcome = JobOutcome(job.name, "ok", summary, time.perf_counter() - started)
        except Exception as exc:  # noqa: BLE001 - a failing run must not stop the scheduler
            logger.opt(exception=exc).error("job failed", job=job.name)
            outcome = JobOutcome(job.name, "failed", {"error": type(exc).__name__}, time.perf_counter() - started)
        finally:
            await release_lease(ctx.db, f"job:{job.name}", OWNER)
    logger.info("job {job} {outcome}", job=job.name, outcome=outcome.outcome,
                duration_ms=round(outcome.duration_s * 1000, 1), **{f"summary_{k}": v for k, v in outcome.summary.items()})
    JOB_RUNS.labels(job.name, outcome.outcome).inc()
    return outcome
