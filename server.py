"""Composition root and command line: `python server.py [serve]` runs the API; other subcommands operate it.

serve (default): load settings, refuse unsafe production settings (exit 2), create one MongoDB
and one Redis client, wait for MongoDB (exit 1 with a one-line reason after MONGO_STARTUP_TIMEOUT_S),
ensure indexes, build the app, start the jobs, serve until SIGTERM/SIGINT, then stop accepting,
drain, stop jobs and close clients.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import signal
import ssl
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pymongo
import tornado.httpserver
import tornado.netutil
from loguru import logger

from core import loop_lag
from core.admin import ADMIN_COMMANDS, add_admin_commands, run_admin
from core.context import AppContext, create_context
from core.emulated import attach, build_emulator
from core.entitlements import load_entitlements
from core.events_admin import add_events_commands, run_events, verify_signature_command
from core.logs import configure_logging
from core.mongo_health import MongoUnavailable, is_unavailable, short_reason, wait_for_mongo
from core.products import load_products
from core.sentry import init_sentry
from core.settings import Settings, SettingsError, load_settings
from core.startup import announce, startup_info
from documents import ensure_indexes
from handlers import make_app
from handlers.metrics import make_metrics_app
from jobs import ALL_JOBS, find_job
from jobs.runner import run_job
from jobs.scheduler import start_scheduler

EXIT_UNSAFE_SETTINGS = 2
EXIT_NO_DATABASE = 1
INDEX_BUILD_TIMEOUT_S = 600.0  # a new index on a big collection takes longer than one request's bound
DRAIN_TIMEOUT_S = 10.0


class Service:
    """A running API process: context, HTTP server and (optionally) the job scheduler."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.http: tornado.httpserver.HTTPServer | None = None
        self.metrics_http: tornado.httpserver.HTTPServer | None = None
        self.port: int | None = None
        self.metrics_port: int | None = None
        self.on_stop: list[Callable[[], Awaitable[Any] | Any]] = []
        self._loop_lag: asyncio.Task | None = None

    async def start(self, host: str | None = None, port: int | None = None) -> int:
        """Prepare the database and listen; return the bound port (0 picks a free one)."""
        s = self.ctx.settings
        with pymongo.timeout(INDEX_BUILD_TIMEOUT_S):
            await ensure_indexes(self.ctx.db)
        await self.ctx.passwords.warm_up()
        app = make_app(self.ctx)
        ssl_ctx = None
        if s.tls_enabled:
            ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_ctx.load_cert_chain(s.tls_cert_file, s.tls_key_file)
        self.http = tornado.httpserver.HTTPServer(
            app, xheaders=False, ssl_options=ssl_ctx, idle_connection_timeout=75, body_timeout=30,
        )
        sockets = tornado.netutil.bind_sockets(s.port if port is None else port, host or s.host)
        self.http.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        if s.metrics_port is not None:
            self.metrics_http = tornado.httpserver.HTTPServer(make_metrics_app())
            metric_sockets = tornado.netutil.bind_sockets(s.metrics_port, s.metrics_host)
            self.metrics_http.add_sockets(metric_sockets)
            self.metrics_port = metric_sockets[0].getsockname()[1]
        self._loop_lag = asyncio.create_task(loop_lag.watch())
        return self.port

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish, stop jobs, close clients."""
        if self._loop_lag is not None:
            self._loop_lag.cancel()
            self._loop_lag = None
        if self.http is not None:
            self.http.stop()
            try:
                await asyncio.wait_for(self.http.close_all_connections(), DRAIN_TIMEOUT_S)
            except TimeoutError:
                logger.warning("connections still open after drain timeout")
            self.http = None
        if self.metrics_http is not None:
            self.metrics_http.stop()
            await self.metrics_http.close_all_connections()
            self.metrics_http = None
        for hook in reversed(self.on_stop):
            result = hook()
            if hasattr(result, "__await__"):
                await result
        self.on_stop.clear()
        await self.ctx.close()


async def start_dev_emulator(settings: Settings) -> tuple[Any, Any, Settings]:
    """Development without RuStore credentials: run the emulator in-process and point the client at it."""
    emulator, app, settings = build_emulator(settings)
    try:
        url = await emulator.start(port=settings.emulator_port, host="127.0.0.1")
    except OSError:
        url = await emulator.start(port=0, host="127.0.0.1")  # the usual port is taken: any free one
    return emulator, app, dataclasses.replace(settings, rustore_api_url=url)


async def serve(settings: Settings) -> int:
    """Run the API until SIGTERM or SIGINT."""
    emulator = app = None
    if settings.is_development and not settings.rustore_configured:
        emulator, app, settings = await start_dev_emulator(settings)
    ctx = create_context(settings)
    service = Service(ctx)
    if emulator is not None:
        ctx.emulator = emulator
        service.on_stop.append(emulator.stop)
    try:
        await wait_for_database(ctx)
        port = await service.start()
    except MongoUnavailable as exc:
        return await give_up(service.stop, str(exc))
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        return await give_up(service.stop, f"MongoDB stopped answering during start-up ({short_reason(exc)})")
    if emulator is not None:
        attach(app, f"http://127.0.0.1:{port}")
    jobs = 0
    if settings.jobs_enabled:
        scheduler = start_scheduler(ctx, ALL_JOBS)
        service.on_stop.append(lambda: scheduler.shutdown(wait=False))
        jobs = len(scheduler.get_jobs())
    announce(startup_info(settings, service, emulator_app=app, jobs=jobs), settings.json_logs)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logger.info("shutting down")
    await service.stop()
    return 0


async def wait_for_database(ctx: AppContext) -> None:
    """Wait (with backoff, one log line per attempt) until MongoDB answers; MongoUnavailable after the timeout."""
    s = ctx.settings
    if ctx.embedded_mongo or not s.mongo_url:
        return
    await wait_for_mongo(ctx.db, s.mongo_url, s.mongo_startup_timeout_s,
                         attempt_s=s.mongo_server_selection_timeout_ms / 1000)


async def give_up(stop: Callable[[], Awaitable[Any]], reason: str) -> int:
    """Exit code 1 with a one-line reason (log and stderr), no traceback."""
    logger.error("cannot start: {}", reason)
    print(f"cannot start: {reason}", file=sys.stderr, flush=True)
    await stop()
    return EXIT_NO_DATABASE


async def with_context(settings: Settings, action: Callable[[AppContext], Awaitable[int]]) -> int:
    """Run a one-off command with the same clients and indexes the server uses."""
    ctx = create_context(settings)
    try:
        await wait_for_database(ctx)
        with pymongo.timeout(INDEX_BUILD_TIMEOUT_S):
            await ensure_indexes(ctx.db)
        return await action(ctx)
    except MongoUnavailable as exc:
        return await give_up(_nothing, str(exc))
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        return await give_up(_nothing, f"MongoDB stopped answering ({short_reason(exc)})")
    finally:
        await ctx.close()


async def _nothing() -> None:
    """Nothing to stop: `with_context` closes its context itself."""


async def cmd_run_job(ctx: AppContext, name: str) -> int:
    """Run one scheduled job once, print its summary; exit 1 if it failed."""
    job = find_job(name)
    if job is None:
        print(f"unknown job {name!r}; known: {', '.join(j.name for j in ALL_JOBS)}", file=sys.stderr)
        return 2
    outcome = await run_job(ctx, job)
    print(json.dumps({"job": job.name, "outcome": outcome.outcome, "summary": outcome.summary}, default=str))
    return 1 if outcome.outcome == "failed" else 0


async def cmd_audit_ledger(ctx: AppContext) -> int:
    """Recompute every balance from the ledger; exit 1 on any drift."""
    from core.metrics import LEDGER_DRIFT
    from documents.wallet import verify_ledger

    audit = await verify_ledger(ctx.db)
    LEDGER_DRIFT.set(len({d.user_id for d in audit.drift}))
    print(json.dumps({"ok": audit.ok, "users_checked": audit.users_checked, "entries_checked": audit.entries_checked,
                      "drift": [d.__dict__ if hasattr(d, "__dict__") else str(d) for d in audit.drift]},
                     default=str, indent=2))
    return 0 if audit.ok else 1


def _warn_if_embedded(ctx: AppContext, what: str) -> None:
    if ctx.embedded_mongo:
        print(f"note: MONGO_URL is not set, so this {what} uses this command's own empty in-memory store", file=sys.stderr)


async def cmd_backup(ctx: AppContext) -> int:
    """Back up every collection now (under the backup job's lease) and prune; exit 1 if it failed."""
    from core.backups import BackupError
    from jobs.backup import backup_now

    _warn_if_embedded(ctx, "backup")
    try:
        summary = await backup_now(ctx)
    except (BackupError, OSError) as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, default=str, indent=2))
    return 0


async def cmd_restore(ctx: AppContext, path: str, drop: bool) -> int:
    """Verify a backup, then restore it; exit 1 (database untouched) when it is damaged or the database has data."""
    from core.backups import BackupError, restore_backup

    _warn_if_embedded(ctx, "restore")
    try:
        summary = await restore_backup(ctx.db, path, drop=drop)
    except (BackupError, OSError) as exc:
        print(f"restore refused or failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, default=str, indent=2))
    print("next: `python server.py run-job ledger-repair` (writes entries a backup caught in an outbox), then "
          "`python server.py audit-ledger`", file=sys.stderr)
    return 0


async def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    """`demo`: the whole app flow against a running development server, or (--start) one started here."""
    from pathlib import Path

    from core.demo import run_demo

    if not args.start:
        emulator_url = args.emulator or f"http://127.0.0.1:{settings.emulator_port}"
        return await run_demo(args.url, emulator_url, Path(args.out))
    if settings.is_production:
        print("demo --start runs a development server; not with APP_ENV=production", file=sys.stderr)
        return EXIT_UNSAFE_SETTINGS
    # Its own in-memory stores and emulator on free ports: nothing of a real deployment is touched.
    local = dataclasses.replace(settings, mongo_url=None, redis_url=None, jobs_enabled=False, emulator_port=0,
                                metrics_port=None, public_url=None, public_base_url=None)
    emulator, app, local = await start_dev_emulator(local)
    service = Service(create_context(local))
    service.on_stop.append(emulator.stop)
    try:
        port = await service.start(host="127.0.0.1", port=0)
        attach(app, f"http://127.0.0.1:{port}")
        return await run_demo(f"http://127.0.0.1:{port}", local.rustore_api_url, Path(args.out))
    finally:
        await service.stop()


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="server.py", description="RuStore backend")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the API server (default)")
    job = sub.add_parser("run-job", help="run one scheduled job once")
    job.add_argument("name", help="job name: " + ", ".join(j.name for j in ALL_JOBS))
    sub.add_parser("audit-ledger", help="recompute every balance from the ledger and report drift")
    sub.add_parser("backup", help="back up every collection to BACKUP_DIR now and prune old backups")
    restore = sub.add_parser("restore", help="verify a backup folder and restore it into the database")
    restore.add_argument("path", help="a backup folder, e.g. backups/2026-11-26T030000Z")
    restore.add_argument("--drop", action="store_true", help="drop every collection first (else the database must be empty)")
    demo = sub.add_parser("demo", help="run the whole app flow against a development server, printing each step")
    demo.add_argument("--url", default="http://127.0.0.1:8000", help="the server (default http://127.0.0.1:8000)")
    demo.add_argument("--emulator", default=None, help="its RuStore emulator (default http://127.0.0.1:EMULATOR_PORT)")
    demo.add_argument("--start", action="store_true", help="start a server and emulator in this process on free ports")
    demo.add_argument("--out", default=".", help="where the postcard PNG is saved (default: this folder)")
    add_admin_commands(sub)
    add_events_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse the command, load settings, run it."""
    args = build_parser().parse_args(argv)
    if args.command == "events" and args.events_command == "verify-signature":
        return verify_signature_command(args)  # for receivers: needs only EVENTS_WEBHOOK_SECRET
    try:
        settings = load_settings()
        load_entitlements(settings, load_products(settings))  # refuse an entitlement naming an unknown product
    except (SettingsError, OSError) as exc:
        print(f"settings error: {exc}", file=sys.stderr)
        return EXIT_UNSAFE_SETTINGS
    command = args.command or "serve"
    # Admin commands print their result on stdout (--json for scripts), so their logs go to stderr.
    configure_logging(settings.log_level, settings.json_logs, sink=sys.stderr if command in ADMIN_COMMANDS else None)
    init_sentry(settings)
    problems = settings.problems()
    if problems:
        for problem in problems:
            logger.error("unsafe production setting: " + problem)
        print("Refusing to start in production:\n  - " + "\n  - ".join(problems), file=sys.stderr)
        return EXIT_UNSAFE_SETTINGS
    if command == "serve":
        return asyncio.run(serve(settings))
    if command == "demo":
        if args.start:  # the demo prints its own story; the in-process server only reports errors
            configure_logging("ERROR", settings.json_logs)
        return asyncio.run(cmd_demo(settings, args))
    if command == "run-job":
        return asyncio.run(with_context(settings, lambda ctx: cmd_run_job(ctx, args.name)))
    if command == "audit-ledger":
        return asyncio.run(with_context(settings, cmd_audit_ledger))
    if command == "backup":
        return asyncio.run(with_context(settings, cmd_backup))
    if command == "restore":
        return asyncio.run(with_context(settings, lambda ctx: cmd_restore(ctx, args.path, args.drop)))
    if command in ADMIN_COMMANDS:
        return asyncio.run(with_context(settings, lambda ctx: run_admin(ctx, args)))
    if command == "events":
        return asyncio.run(with_context(settings, lambda ctx: run_events(ctx, args)))
    raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    sys.exit(main())
