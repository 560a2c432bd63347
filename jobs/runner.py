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

from core.metrics import JOB_LAST_SUCCESS, JOB_RUNS, MONGO_UNAVAILABLE
from core.mongo_health import is_unavailable, short_reason
from documents.common import acquire_lease, release_lease

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
    """Run `job` once if this process can take its lease; log and return the outcome.

    While MongoDB is unreachable the run is skipped (one warning line, `mongo_unavailable_total{component="job"}`)
    and the next scheduled run tries again; the lease, if taken, expires by itself.
    """
    started = time.perf_counter()
    try:
        outcome = await _run_leased(ctx, job, started)
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        outcome = _database_skip(job, exc, started)
    level = "WARNING" if outcome.summary.get("reason") == "database_unavailable" else "INFO"
    logger.log(level, "job {job} {outcome}", job=job.name, outcome=outcome.outcome,
                duration_ms=round(outcome.duration_s * 1000, 1), **{f"summary_{k}": v for k, v in outcome.summary.items()})
    JOB_RUNS.labels(job.name, outcome.outcome).inc()
    if outcome.outcome == "ok":
        JOB_LAST_SUCCESS.labels(job.name).set(time.time())
    return outcome


async def _run_leased(ctx: Any, job: Job, started: float) -> JobOutcome:
    if not await acquire_lease(ctx.db, f"job:{job.name}", OWNER, ctx.now(), timedelta(seconds=job.lease_s)):
        return JobOutcome(job.name, "skipped", {"reason": "lease held by another process"}, 0.0)
    try:
        summary = await job.run(ctx)
        outcome = JobOutcome(job.name, "ok", summary, time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001 - a failing run must not stop the scheduler
        if is_unavailable(exc):
            outcome = _database_skip(job, exc, started)
        else:
            logger.opt(exception=exc).error("job failed", job=job.name)
            outcome = JobOutcome(job.name, "failed", {"error": type(exc).__name__}, time.perf_counter() - started)
    try:
        await release_lease(ctx.db, f"job:{job.name}", OWNER)
    except Exception as exc:
        if not is_unavailable(exc):
            raise
    return outcome


def _database_skip(job: Job, exc: BaseException, started: float) -> JobOutcome:
    MONGO_UNAVAILABLE.labels("job").inc()  # run_job's one summary line says why, at warning level
    return JobOutcome(job.name, "skipped", {"reason": "database_unavailable", "error": short_reason(exc)},
                      time.perf_counter() - started)
