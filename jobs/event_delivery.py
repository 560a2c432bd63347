"""Job `event-delivery`: derive events from stored state, then POST due events to every receiver, signed.

Per endpoint, only the oldest undelivered event of each user is eligible (later ones wait, so a user's
events arrive in the order they happened); users are independent. A 2xx answer delivers; anything
else, a timeout (10 s) or a connection error is a failed attempt retried after the next delay of
EVENTS_RETRY_SCHEDULE_S; past the schedule the delivery is dead (a dead event no longer holds back the
user's later ones) until an operator replays it (`python server.py events replay`). Events stay stored
while an endpoint is down, however long; it catches up when it answers again.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import Any

import aiohttp

from core.events_signature import sign
from core.metrics import EVENTS_DEAD, EVENTS_DELIVERED, EVENTS_FAILED_ATTEMPTS, EVENTS_OLDEST_UNDELIVERED
from documents import events as events_doc
from documents.common import utc
from documents.entitlements import sweep
from jobs.runner import Job

TIMEOUT_S = 10.0
USERS_PER_ROUND = 100  # users whose head event is considered per endpoint per round (<= ~2 min of timeouts)
ROUNDS = 20  # rounds per run: each delivers at most one event per user
BUDGET_S = 300.0  # no new round after this long, well inside the lease
PARALLEL = 8  # concurrent requests per endpoint


async def _send(session: aiohttp.ClientSession, url: str, secret: str, doc: dict) -> tuple[int | None, str | None]:
    body = json.dumps(events_doc.envelope(doc), ensure_ascii=False, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "Signature": sign(secret, body), "Event-Id": doc["_id"],
               "Event-Type": doc["type"], "User-Agent": "rustore-backend-events/1"}
    try:
        async with session.post(url, data=body, headers=headers, allow_redirects=False) as resp:
            await resp.read()
            return resp.status, None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return None, type(exc).__name__


def _due(heads: list[dict], key: str, now: datetime) -> list[dict]:
    """The users' head events whose next attempt is due."""
    return [d for d in heads if utc(d["deliveries"][key]["next_at"]) <= now]


async def deliver_endpoint(ctx: Any, session: aiohttp.ClientSession, target: events_doc.Endpoint) -> dict:
    """Deliver what is due for one endpoint; counts of delivered, failed and dead."""
    counts = {"delivered": 0, "failed": 0, "dead": 0}
    secret = ctx.settings.events_webhook_secret or ""
    schedule = ctx.settings.events_retry_schedule
    limit = asyncio.Semaphore(PARALLEL)

    async def one(doc: dict) -> bool:
        async with limit:
            status, error = await _send(session, target.url, secret, doc)
        now = ctx.now()
        if error is None:
            await events_doc.mark_delivered(ctx.db, doc["_id"], target.key, int(status or 0), now)
            EVENTS_DELIVERED.inc()
            counts["delivered"] += 1
            return True
        EVENTS_FAILED_ATTEMPTS.inc()
        counts["failed"] += 1
        if await events_doc.mark_failed(ctx.db, doc, target.key, error, status, now, schedule):
            EVENTS_DEAD.inc()
            counts["dead"] += 1
            return True  # dead: the user's next event may go
        return False

    started = time.monotonic()
    for _ in range(ROUNDS):
        if time.monotonic() - started > BUDGET_S:
            break
        due = _due(await events_doc.pending_heads(ctx.db, target.key, USERS_PER_ROUND), target.key, ctx.now())
        if not due or not any(await asyncio.gather(*(one(d) for d in due))):
            break
    return counts


async def run(ctx: Any) -> dict:
    """Derive new events, deliver due ones to every endpoint, export the oldest undelivered age."""
    targets = events_doc.endpoints(ctx.db)
    if not targets:
        return {"skipped": "EVENTS_WEBHOOK_URLS is not set"}
    summary: dict = await sweep(ctx.db, ctx.entitlements, ctx.now())
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for target in targets:
            for name, count in (await deliver_endpoint(ctx, session, target)).items():
                summary[name] = summary.get(name, 0) + count
    oldest = await events_doc.oldest_undelivered(ctx.db, [target.key for target in targets])
    EVENTS_OLDEST_UNDELIVERED.set(0 if oldest is None else max(0.0, (ctx.now() - utc(oldest)).total_seconds()))
    return summary


JOB = Job("event-delivery", run, "events_delivery_interval_s", lease_s=900)
