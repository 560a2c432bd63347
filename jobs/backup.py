"""Job `backup`: every day at BACKUP_TIME_UTC, back up every collection to BACKUP_DIR and keep the newest BACKUP_KEEP."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from core.backups import BackupError, create_backup, latest_backup_time, prune_backups
from core.metrics import BACKUP_LAST_SUCCESS
from documents.common import acquire_lease, release_lease
from jobs.runner import OWNER, Job

# Long enough for a large database (a crashed run blocks on-demand backups this long, never the next day's);
# beyond a few hours `mongodump` or managed backups are the better tool anyway (see docs/backups.md).
LEASE_S = 3 * 3600


def backup_dir(settings: Any) -> Path:
    """BACKUP_DIR as a path (relative to the working directory)."""
    return Path(settings.backup_dir).expanduser()


def _hour_minute(settings: Any) -> tuple[int, int]:
    hour, minute = settings.backup_time_utc.split(":")
    return int(hour), int(minute)


def daily_trigger(settings: Any) -> CronTrigger | None:
    """Every day at BACKUP_TIME_UTC, or None when BACKUP_ENABLED is off."""
    if not settings.backup_enabled:
        return None
    hour, minute = _hour_minute(settings)
    return CronTrigger(hour=hour, minute=minute, timezone=UTC)


def current_slot(settings: Any, now: datetime) -> datetime:
    """The latest scheduled backup time at or before `now`."""
    hour, minute = _hour_minute(settings)
    slot = now.astimezone(UTC).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return slot if slot <= now else slot - timedelta(days=1)


async def backup_and_prune(ctx: Any) -> dict:
    """Write a backup now, then prune old ones; the summary names the new folder."""
    directory = backup_dir(ctx.settings)
    result = await create_backup(ctx.db, directory, ctx.now())
    pruned = await asyncio.to_thread(prune_backups, directory, ctx.settings.backup_keep)
    collections = result["manifest"]["collections"]
    return {"path": result["path"], "collections": len(collections),
            "documents": sum(c["count"] for c in collections.values()),
            "bytes": sum(c["bytes"] for c in collections.values()),
            "pruned": len(pruned["removed"]), "stale_temps_removed": len(pruned["stale_temps_removed"])}


async def run(ctx: Any) -> dict:
    """The scheduled run: skip when this day's slot already has a backup (another process finished it first)."""
    # The lease stops two processes backing up at once, but it is released at the end, so a process whose
    # timer fires a little later would otherwise take a second backup of the same slot.
    latest = await asyncio.to_thread(latest_backup_time, backup_dir(ctx.settings))
    if latest is not None and latest >= current_slot(ctx.settings, ctx.now()):
        BACKUP_LAST_SUCCESS.set(latest.timestamp())
        return {"skipped": "this slot already has a backup", "latest": latest.isoformat()}
    summary = await backup_and_prune(ctx)
    BACKUP_LAST_SUCCESS.set(ctx.now().timestamp())
    return summary


async def backup_now(ctx: Any) -> dict:
    """An on-demand backup under the job's lease (`python server.py backup`); BackupError if one is running."""
    name = f"job:{JOB.name}"
    if not await acquire_lease(ctx.db, name, OWNER, ctx.now(), timedelta(seconds=LEASE_S)):
        raise BackupError(f"another backup is running (lease {name} is held); try again when it has finished")
    try:
        return await backup_and_prune(ctx)
    finally:
        await release_lease(ctx.db, name, OWNER)


JOB = Job("backup", run, lease_s=LEASE_S, trigger=daily_trigger)
