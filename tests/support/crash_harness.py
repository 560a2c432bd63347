"""Runs the real server, or one of its commands, in a process of its own on a store that survives the process.

    python -m tests.support.crash_harness STATE serve --ready FILE [--pause-before-entry PREFIX --paused FILE]
    python -m tests.support.crash_harness STATE run-job NAME [--clock-offset-s SECONDS]
    python -m tests.support.crash_harness STATE audit-ledger

Settings come from the environment exactly as for `server.py`. The only differences from
`server.py serve` / `run-job` / `audit-ledger` are test-side: MongoDB is the mongomock store of
`tests.support.durable_store` (kept in the file STATE), and `--pause-before-entry PREFIX` parks the
request that is about to insert a ledger entry whose idempotency key starts with PREFIX, after its
wallet update was stored, writing FILE so the test knows it can now kill the process at exactly that
point. `--clock-offset-s` moves this process's clock forward (time that passed while it was down).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mongomock_motor import AsyncMongoMockClient

import server
from core.context import AppContext, create_context
from core.logs import configure_logging
from core.settings import load_settings
from documents import ensure_indexes
from documents.wallet import TRANSACTIONS
from tests.support.durable_store import DurableDatabase


def pause_before_entry(prefix: str, marker: Path):
    """A pause hook parking forever the first insert of a ledger entry whose key starts with `prefix`."""
    def hook(collection: str, method: str, args: tuple, kwargs: dict) -> Any:
        document = args[0] if args else kwargs.get("document")
        if collection == TRANSACTIONS and method == "insert_one" and \
                str((document or {}).get("idempotency_key", "")).startswith(prefix):
            marker.write_text(document["idempotency_key"])
            return asyncio.get_running_loop().create_future()  # never resolved: the test kills us here
        return None
    return hook


def context(args: argparse.Namespace) -> AppContext:
    """The server's context on the durable store, with this process's clock."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.json_logs, sink=sys.stderr)  # stdout carries the JSON answers
    client = AsyncMongoMockClient(tz_aware=True)
    pause = None
    if getattr(args, "pause_before_entry", None):
        pause = pause_before_entry(args.pause_before_entry, Path(args.paused))
    db = DurableDatabase(client[settings.mongo_db], Path(args.state), pause)
    offset = timedelta(seconds=getattr(args, "clock_offset_s", 0.0))
    return create_context(settings, mongo=(client, db, True), clock=lambda: datetime.now(UTC) + offset)


async def serve(args: argparse.Namespace) -> int:
    """Like `server.py serve`: listen (on a free port, written to --ready) until SIGTERM, then stop cleanly."""
    service = server.Service(context(args))
    port = await service.start(host="127.0.0.1", port=0)
    ready = Path(args.ready)
    ready.with_suffix(".tmp").write_text(json.dumps({"port": port, "pid": os.getpid()}))
    os.replace(ready.with_suffix(".tmp"), ready)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await service.stop()
    return 0


async def command(args: argparse.Namespace) -> int:
    """Like `server.py run-job NAME` / `audit-ledger`, on the durable store."""
    ctx = context(args)
    try:
        await ensure_indexes(ctx.db)
        if args.command == "run-job":
            return await server.cmd_run_job(ctx, args.name)
        return await server.cmd_audit_ledger(ctx)
    finally:
        await ctx.close()


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run it."""
    parser = argparse.ArgumentParser(prog="crash_harness")
    parser.add_argument("state", help="file holding the store between processes")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve")
    run.add_argument("--ready", required=True)
    run.add_argument("--pause-before-entry")
    run.add_argument("--paused")
    job = sub.add_parser("run-job")
    job.add_argument("name")
    job.add_argument("--clock-offset-s", type=float, default=0.0)
    sub.add_parser("audit-ledger")
    args = parser.parse_args(argv)
    return asyncio.run(serve(args) if args.command == "serve" else command(args))


if __name__ == "__main__":
    sys.exit(main())
