"""Bare Tornado baseline for the load benchmark: our paths, our store calls, our answers, none of our code.

Started by `bench.load` in a child process on a store seeded exactly like our server's
(`bench.seed`). Each path replays the template recorded from our app (`bench.record`): the same
store calls with this request's user and strings, then the recorded answer (same status and
size), then the recorded background calls (webhook processing). Authenticated paths check the
session like ours (Redis, and on a miss the same two store reads, then cache it for 60 s); login
runs the same bcrypt check in one worker thread. What the bare server leaves out is what the
comparison measures: JWT and validation, rate limits, the ledger's and billing's logic, RuStore
calls, logging and metrics.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import pickle
import signal
from datetime import UTC, datetime
from typing import Any

import bcrypt
import redis.asyncio as redis
import tornado.web
from bson import ObjectId

from bench.mix import PUBLIC
from bench.replay import Substitution, Template, replay
from bench.seed import PASSWORD, seed
from bench.store import open_database
from documents.accounts import find_active_session, find_user


class Shared:
    """The bare process's store, Redis, bcrypt thread and background tasks."""

    def __init__(self, db: Any, cache: Any, prefix: str, password_hash: bytes) -> None:
        self.db, self.cache, self.prefix, self.password_hash = db, cache, prefix, password_hash
        self.cpu = concurrent.futures.ThreadPoolExecutor(1)
        self.background: set[asyncio.Task] = set()

    async def session_active(self, session_id: str, user_id: ObjectId) -> None:
        """Our session check: Redis first; on a miss the sessions and users reads, then cache the answer."""
        key = f"{self.prefix}sess:{session_id}"
        try:
            cached = await self.cache.get(key)
        except Exception:  # noqa: BLE001 - like ours: Redis failing means asking the store
            cached = None
        if cached is None:
            await find_active_session(self.db, session_id, datetime.now(UTC))
            await find_user(self.db, user_id)
            with contextlib.suppress(Exception):
                await self.cache.set(key, f"1:{user_id}", ex=60, nx=True)

    def spawn(self, coro: Any) -> None:
        """Run replayed background work after the answer, like ours' webhook processing."""
        task = asyncio.ensure_future(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)


class Replayed(tornado.web.RequestHandler):
    """One endpoint of the mix: replay its template for this request."""

    def initialize(self, template: Template, shared: Shared) -> None:
        """Tornado's per-request set-up: the template and the shared state."""
        self.template, self.shared = template, shared

    async def get(self) -> None:
        """GET paths of the mix."""
        await self.serve()

    async def post(self) -> None:
        """POST paths of the mix."""
        await self.serve()

    async def serve(self) -> None:
        """Session check, bcrypt for logins, the store calls, the recorded answer, background calls."""
        t, s, headers = self.template, self.shared, self.request.headers
        user_id = ObjectId(headers["X-Bench-User"])
        if t.endpoint not in PUBLIC:
            await s.session_active(headers["X-Bench-Session"], user_id)
        if t.endpoint == "login":
            await asyncio.get_running_loop().run_in_executor(s.cpu, bcrypt.checkpw, PASSWORD.encode(), s.password_hash)
        sub = Substitution(t, user_id, json.loads(headers.get("X-Bench-Vars", "{}")))
        await replay(s.db, t.calls, sub)
        self.set_status(t.status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(t.body)
        if t.background:
            s.spawn(replay(s.db, t.background, sub))


class Health(tornado.web.RequestHandler):
    """GET /api/health: readiness for the bench."""

    def get(self) -> None:
        """Answer ok."""
        self.write({"status": "ok"})


async def main() -> None:
    """Seed, serve the replaying routes until SIGTERM."""
    with open(os.environ["BENCH_TEMPLATES"], "rb") as f:
        templates: dict[str, Template] = pickle.load(f)
    db = open_database()  # its own database on MONGO_URL (bench/store.py), else an embedded store
    if os.environ.get("BENCH_SEED", "1") == "1":
        await seed(db, int(os.environ["BENCH_USERS"]), int(os.environ["BENCH_ENTRIES"]))
    password_hash = (await db["users"].find_one({}, {"password_hash": 1}))["password_hash"].encode()
    cache = redis.Redis.from_url(os.environ["REDIS_URL"])
    shared = Shared(db, cache, os.environ["REDIS_PREFIX"], password_hash)
    routes: list[Any] = [(r"/api/health", Health)]
    routes += [(t.path, Replayed, {"template": t, "shared": shared}) for t in templates.values()]
    server = tornado.web.Application(routes, log_function=lambda handler: None).listen(
        int(os.environ["PORT"]), os.environ.get("HOST", "127.0.0.1"))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()
    if shared.background:
        await asyncio.wait(set(shared.background), timeout=30)
    await cache.aclose()


if __name__ == "__main__":
    asyncio.run(main())
