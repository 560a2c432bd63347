"""The backup job: daily trigger, runs through the job runner, prunes; `server.py backup` / `restore` exit codes."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from core.backups import BackupError, list_backups, restore_backup
from core.settings import SettingsError, load_settings
from documents.common import acquire_lease
from jobs import find_job, ledger_repair
from jobs.backup import JOB, backup_now, current_slot, daily_trigger
from jobs.runner import run_job
from jobs.scheduler import start_scheduler
from tests.core.test_backups import assert_same, edit_manifest, populate, snapshot, wipe
from tests.core.test_settings import BASE, ROOT, _clean_env


def at(service, when: datetime) -> None:
    """Set the app's clock."""
    service.ctx.clock = lambda: when


async def test_job_is_registered_as_a_daily_job_at_the_configured_time():
    assert find_job("backup") is JOB and JOB.interval_setting == "" and JOB.lease_s >= 3600
    default = daily_trigger(load_settings(BASE))
    assert isinstance(default, CronTrigger) and str(default.timezone) == "UTC"
    assert default.get_next_fire_time(None, datetime(2026, 11, 26, 3, 0, 1, tzinfo=UTC)) == \
        datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
    evening = daily_trigger(load_settings({**BASE, "BACKUP_TIME_UTC": "22:15"}))
    assert evening.get_next_fire_time(None, datetime(2026, 11, 26, 3, 0, tzinfo=UTC)) == \
        datetime(2026, 11, 26, 22, 15, tzinfo=UTC)
    assert daily_trigger(load_settings({**BASE, "BACKUP_ENABLED": "false"})) is None


def test_backup_settings_have_defaults_and_are_validated():
    s = load_settings(BASE)
    assert (s.backup_enabled, s.backup_dir, s.backup_time_utc, s.backup_keep) == (True, "./backups", "03:00", 7)
    assert load_settings({**BASE, "BACKUP_DIR": "/var/backups/rsb", "BACKUP_KEEP": "30"}).backup_keep == 30
    for env in ({"BACKUP_TIME_UTC": "3am"}, {"BACKUP_TIME_UTC": "24:00"}, {"BACKUP_KEEP": "0"}):
        with pytest.raises(SettingsError):
            load_settings({**BASE, **env})


async def test_scheduler_runs_the_backup_on_its_cron_and_interval_jobs_as_before(start_server):
    service, _ = await start_server(backup_time_utc="04:30")
    scheduler = start_scheduler(service.ctx, [ledger_repair.JOB, JOB])
    try:
        backup = scheduler.get_job("backup")
        assert isinstance(backup.trigger, CronTrigger)
        assert backup.next_run_time.astimezone(UTC).time().isoformat() == "04:30:00"
        assert isinstance(scheduler.get_job("ledger-repair").trigger, IntervalTrigger)
    finally:
        scheduler.shutdown(wait=False)
    service.ctx.settings = dataclasses.replace(service.ctx.settings, backup_enabled=False)
    scheduler = start_scheduler(service.ctx, [ledger_repair.JOB, JOB])
    try:
        assert scheduler.get_job("backup") is None and scheduler.get_job("ledger-repair") is not None
    finally:
        scheduler.shutdown(wait=False)


def test_current_slot_is_the_latest_scheduled_time():
    s = load_settings(BASE)
    assert current_slot(s, datetime(2026, 11, 26, 2, 59, tzinfo=UTC)) == datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    assert current_slot(s, datetime(2026, 11, 26, 3, 0, tzinfo=UTC)) == datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


async def test_job_runner_backs_up_once_per_slot_and_the_backup_restores(start_server, tmp_path):
    service, api = await start_server(backup_dir=str(tmp_path))
    await populate(service, api)
    before = await snapshot(service.ctx.db)
    at(service, datetime(2026, 11, 26, 3, 0, 2, tzinfo=UTC))
    first = await run_job(service.ctx, JOB)
    assert first.outcome == "ok", first.summary
    assert first.summary["path"] == str(tmp_path / "2026-11-26T030002Z")
    assert first.summary["documents"] == sum(len(d) for d in before.values())
    # Another process whose timer fired a moment later finds the slot done.
    at(service, datetime(2026, 11, 26, 3, 0, 9, tzinfo=UTC))
    late = await run_job(service.ctx, JOB)
    assert late.outcome == "ok" and late.summary["skipped"] == "this slot already has a backup"
    assert len(list_backups(tmp_path)) == 1
    await wipe(service.ctx.db)
    await restore_backup(service.ctx.db, first.summary["path"])
    assert_same(before, await snapshot(service.ctx.db))


async def test_daily_runs_keep_the_newest_backup_keep(start_server, tmp_path):
    service, _ = await start_server(backup_dir=str(tmp_path), backup_keep=2)
    for day in range(4):
        at(service, datetime(2026, 11, 26, 3, 0, tzinfo=UTC) + timedelta(days=day))
        outcome = await run_job(service.ctx, JOB)
        assert outcome.outcome == "ok" and "path" in outcome.summary
    assert [p.name for p in list_backups(tmp_path)] == ["2026-11-28T030000Z", "2026-11-29T030000Z"]
    assert outcome.summary["pruned"] == 1


async def test_on_demand_backup_is_refused_while_another_backup_holds_the_lease(start_server, tmp_path):
    service, _ = await start_server(backup_dir=str(tmp_path))
    await acquire_lease(service.ctx.db, "job:backup", "other-host:1", service.ctx.now(), timedelta(hours=1))
    with pytest.raises(BackupError, match="another backup is running"):
        await backup_now(service.ctx)
    assert (await run_job(service.ctx, JOB)).outcome == "skipped"
    assert list(tmp_path.iterdir()) == []


async def cli(*args: str, **env: str) -> tuple[int, str, str]:
    """Run `python server.py ...` in development mode with nothing configured (its own in-memory store)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "server.py", *args, cwd=ROOT, env=_clean_env(**env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


def summary_of(out: str) -> dict:
    """The command's JSON summary, printed after any log lines (development logs go to stdout)."""
    return json.loads(out[out.index("{\n"):])


async def test_cli_backup_then_restore_and_its_refusals(tmp_path):
    code, out, err = await cli("backup", BACKUP_DIR=str(tmp_path))
    assert code == 0, err
    summary = summary_of(out)
    folder = Path(summary["path"])
    assert folder.parent == tmp_path and list_backups(tmp_path) == [folder] and "in-memory store" in err
    code, out, err = await cli("restore", str(folder))
    assert code == 0, err
    assert summary_of(out)["path"] == str(folder) and "audit-ledger" in err
    assert (await cli("restore", str(folder), "--drop"))[0] == 0

    code, _, err = await cli("restore", str(tmp_path / "missing"))
    assert code == 1 and "no backup at" in err
    edit_manifest(folder, lambda m: m["collections"]["users"].update(count=1))  # the subprocess's store is empty
    code, _, err = await cli("restore", str(folder))
    assert code == 1 and "failed verification" in err and "users: users.bson.gz does not match" in err
    code, _, err = await cli("restore")
    assert code == 2 and "path" in err
    code, _, err = await cli("restore", str(folder), "--force")
    assert code == 2


async def test_cli_backup_reports_an_unwritable_directory(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, out, err = await cli("backup", BACKUP_DIR=str(blocker / "backups"))
    assert code == 1 and "{" not in out and "backup failed" in err
