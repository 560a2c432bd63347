"""Bench-only entry: the real server (`server.Service`) on a freshly seeded store, with an event-loop lag probe.

Started by `bench.load` in a child process. Settings come from the environment exactly as for
`python server.py` (the bench points RuStore at its emulator process and sets JWT_SECRET, raised
rate limits and JOBS_ENABLED=false). BENCH_USERS / BENCH_ENTRIES size the data set (`bench.seed`),
seeded into the store the process will serve from before it listens. After SIGTERM it stops
accepting, lets in-flight requests and background webhook processing finish, checks the
purchases (how many ledger credits each got; `verify_ledger` over their owners) and writes
BENCH_OUT: the loop-lag samples, the garbage-collection pauses, the seeding audit and that check. Production code is untouched:
this file only composes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import signal
import time
from collections import Counter
from typing import Any

from bench.seed import check_sample, seed
from core.context import create_context
from core.logs import configure_logging
from core.settings import load_settings
from documents.wallet import verify_ledger
from server import Service

PROBE_INTERVAL_S = 0.010


async def lag_probe(samples: list[list[float]]) -> None:
    """Sleep 10 ms again and again; record (wall time, overshoot in ms): how long the loop kept a ready task waiting."""
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        await asyncio.sleep(PROBE_INTERVAL_S)
        samples.append([round(time.time(), 3), round((loop.time() - started - PROBE_INTERVAL_S) * 1000, 2)])


def record_gc(pauses: list[list[float]]) -> None:
    """Record every garbage collection of 1 ms or more as (wall time, generation, ms): a stall the lag probe may see."""
    started: list[float] = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        elif (took := (time.perf_counter() - started[0]) * 1000) >= 1:
            pauses.append([round(time.time(), 3), info["generation"], round(took, 1)])
    gc.callbacks.append(callback)


async def purchase_check(db: Any) -> dict[str, Any]:
    """Exactly-once evidence: ledger `buy` entries per purchase, and the audit of every purchase owner's wallet."""
    purchases = await db["purchases"].find({}, {"invoice_id": 1, "user_id": 1, "credit_entry_id": 1,
                                                "state": 1}).to_list(None)
    buys = await db["transactions"].find({"type": "buy"}, {"reference": 1, "user_id": 1}).to_list(None)
    per_invoice = Counter(entry["reference"] for entry in buys)
    owners = {p["user_id"] for p in purchases if p.get("user_id") is not None}
    audit = await verify_ledger(db, owners) if owners else None
    return {
        "purchases": len(purchases),
        "credited_purchases": sum(1 for p in purchases if p.get("credit_entry_id")),
        "states": dict(Counter(p.get("state") for p in purchases)),
        "buy_entries": len(buys),
        "invoices_credited_more_than_once": sorted(ref for ref, n in per_invoice.items() if n > 1),
        "credited_invoices": sorted(per_invoice),
        "owners_audited": len(owners),
        "audit_ok": audit.ok if audit else True,
        "audit_drift": [str(d) for d in audit.drift[:10]] if audit else [],
        "audit_pending": len(audit.pending) if audit else 0,
    }


async def settle(service: Service, timeout_s: float) -> None:
    """Stop accepting and wait (bounded) for open connections and background processing to finish."""
    assert service.http is not None
    service.http.stop()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(service.http.close_all_connections(), timeout_s)
    deadline = time.monotonic() + timeout_s
    while service.ctx.background and time.monotonic() < deadline:
        await asyncio.wait(set(service.ctx.background), timeout=0.5)


async def main() -> None:
    """Seed, serve until SIGTERM, then check and report."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.json_logs)
    ctx = create_context(settings)
    users, entries = int(os.environ["BENCH_USERS"]), int(os.environ["BENCH_ENTRIES"])
    t0 = time.perf_counter()
    seeding = os.environ.get("BENCH_SEED", "1") == "1"  # on a shared MongoDB only the role's first process seeds
    report: dict[str, Any] = {"pid": os.getpid(), "seeded": await seed(ctx.db, users, entries) if seeding else None}
    report["seed_s"] = round(time.perf_counter() - t0, 1)
    report["seed_audit"] = await check_sample(ctx.db, users)
    samples: list[list[float]] = []
    pauses: list[list[float]] = []
    record_gc(pauses)
    probe = asyncio.ensure_future(lag_probe(samples))
    service = Service(ctx)
    await service.start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    probe.cancel()
    await settle(service, float(os.environ.get("BENCH_SETTLE_S", "60")))
    report["checks"] = await purchase_check(ctx.db)
    report["lag"], report["gc"] = samples, pauses
    await service.stop()
    with open(os.environ["BENCH_OUT"], "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    asyncio.run(main())
