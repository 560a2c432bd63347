"""Points benchmark: spend and balance at 64 clients, against a bare Tornado handler on the same store.

Run: `python -m bench.points` (`--spends`, `--balances`, `--clients`, `--rounds`). Both
servers run in their own process on the embedded mongomock store (the development default),
seeded with the same users and wallets through the ledger. The bare server has no auth, rate
limit, validation, ledger logic or logging: per request it makes exactly the store calls our
endpoint makes (the bench counts ours first and refuses to compare if they differ). Both run
side by side and get the same fixed number of requests in alternating rounds, so their stores
stay the same size (mongomock scans every document per query) and background load hits both
alike. `health` (no store call) measures the shared request pipeline alone. Target: spend and
balance each reach at least 70% of the bare baseline's throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import tornado.web
from bson import ObjectId
from mongomock_motor import AsyncMongoMockClient
from pymongo import ReturnDocument

from bench.common import DEFAULT_REDIS, ROOT, Samples, redis_reachable, running_server
from bench.store import open_database
from core.context import create_context
from core.logs import configure_logging
from core.settings import load_settings
from documents import accounts, ensure_indexes, wallet
from server import Service
from tests.support.yielding import YieldingDatabase

USERS = 64
GRANT = 10**8
Send = Callable[[aiohttp.ClientSession, int], Awaitable[int]]


async def seed(db, users: int) -> list:
    """Create `users` accounts with a large balance through the ledger; return their ids."""
    ids = []
    for i in range(users):
        user = await accounts.create_user(db, f"bench{i}@bench.example", None, None, datetime.now(UTC))
        await wallet.credit(db, user["_id"], GRANT, "admin_grant", f"bench-grant:{i}")
        ids.append(user["_id"])
    return ids


async def bearer(ctx, user_id: ObjectId) -> dict[str, str]:
    """An Authorization header for a fresh session of the user."""
    session, _ = await accounts.create_session(ctx.db, user_id, None, ctx.now(), idle_ttl=timedelta(hours=1),
                                                   absolute_ttl=timedelta(hours=1))
    return {"Authorization": "Bearer " + ctx.tokens.issue(str(user_id), session["_id"])[0]}


async def until_terminated() -> None:
    """Wait for SIGTERM/SIGINT."""
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()


async def serve_app(out: Path) -> None:
    """Child process: the real app on the embedded store, with seeded users and their access tokens."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.json_logs)
    ctx = create_context(settings)
    await ensure_indexes(ctx.db)
    out.write_text(json.dumps([await bearer(ctx, uid) for uid in await seed(ctx.db, int(os.environ["BENCH_USERS"]))]))
    service = Service(ctx)
    await service.start()
    await until_terminated()
    await service.stop()


SPEND_CALLS = 6  # the ledger's fresh debit: pre-check, apply, stored?, insert, pull, clear flag
BALANCE_CALLS = 1


def bare_routes(db) -> list:
    """Handlers making exactly our endpoints' store calls (same filters and updates), and nothing else."""
    users, txs = db["users"], db["transactions"]

    class Balance(tornado.web.RequestHandler):
        async def get(self) -> None:
            doc = await users.find_one({"_id": ObjectId(self.request.headers["X-User-Id"])},
                                       {"points.balance": 1, "points.updated_at": 1})
            self.write({"balance": doc["points"]["balance"], "updatedAt": doc["points"]["updated_at"].isoformat()})

    class Spend(tornado.web.RequestHandler):
        async def post(self) -> None:
            uid, key = ObjectId(self.request.headers["X-User-Id"]), "spend:" + self.request.headers["Idempotency-Key"]
            now, eid = datetime.now(UTC), ObjectId()
            await txs.find_one({"user_id": uid, "idempotency_key": key})
            pending = {"_id": eid, "type": "spend", "amount": -1, "idempotency_key": key, "reference": None,
                       "meta": {"request_hash": "x" * 64}, "created_at": now}
            snap = await users.find_one_and_update(
                {"_id": uid, "points.recent.k": {"$ne": key[-16:]}, "points.outbox.idempotency_key": {"$ne": key},
                 "points.balance": {"$gte": 1}},
                {"$inc": {"points.balance": -1, "points.seq": 1},
                 "$push": {"points.recent": {"$each": [{"k": key[-16:], "at": now}], "$slice": -1000},
                           "points.outbox": pending},
                 "$set": {"points.updated_at": now}, "$min": {"points.pending_since": now}},
                projection={"points.balance": 1, "points.seq": 1, "points.outbox": 1},
                return_document=ReturnDocument.AFTER)
            await txs.find({"_id": {"$in": [eid]}}, {"_id": 1}).limit(1).to_list(1)
            points = snap["points"]
            await txs.insert_one({**pending, "user_id": uid, "seq": points["seq"], "balance_after": points["balance"]})
            await users.find_one_and_update({"_id": uid}, {"$pull": {"points.outbox": {"_id": {"$in": [eid]}}}},
                                            projection={"points.outbox._id": 1}, return_document=ReturnDocument.AFTER)
            await users.update_one({"_id": uid, "points.outbox": {"$size": 0}, "points.pending_since": {"$exists": True}},
                                   {"$unset": {"points.pending_since": ""}})
            self.write({"balance": points["balance"], "transaction": {"id": str(eid), "amount": -1}})

    class Health(tornado.web.RequestHandler):
        def get(self) -> None:
            self.write({"status": "ok"})

    return [(r"/api/health", Health), (r"/bare/balance", Balance), (r"/bare/spend", Spend)]


async def serve_bare(out: Path) -> None:
    """Child process: the bare handlers on a store seeded like the app's."""
    db = open_database()  # its own database on MONGO_URL (bench/store.py), else an embedded store
    await ensure_indexes(db)
    ids = await seed(db, int(os.environ["BENCH_USERS"]))
    out.write_text(json.dumps([{"X-User-Id": str(uid)} for uid in ids]))
    server = tornado.web.Application(bare_routes(db)).listen(int(os.environ["PORT"]), os.environ["HOST"])
    await until_terminated()
    server.stop()


async def count_store_calls(redis_url: str | None) -> dict[str, int]:
    """Store calls our spend and balance endpoints make per request, counted on an in-process app."""
    calls: list[tuple[str, str]] = []
    client = AsyncMongoMockClient(tz_aware=True)
    db = YieldingDatabase(client["count"], lambda collection, method: calls.append((collection, method)))
    extra = {"redis_url": redis_url, "redis_prefix": f"bench:count:{os.getpid()}:"} if redis_url else {}
    ctx = create_context(load_settings(None, app_env="test", jobs_enabled=False, **extra), mongo=(client, db, True))
    service = Service(ctx)
    port = await service.start(host="127.0.0.1", port=0)
    headers = await bearer(ctx, (await seed(db, 1))[0])
    base, counted = f"http://127.0.0.1:{port}/api/points", {}
    async with aiohttp.ClientSession() as http:
        for name, method, path in (("warm-up", "GET", "/balance"), ("balance", "GET", "/balance"),
                                   ("spend", "POST", "/spend")):
            calls.clear()
            async with http.request(method, base + path, json={"amount": 1} if method == "POST" else None,
                                    headers={**headers, "Idempotency-Key": "count"}) as resp:
                assert resp.status == 200, await resp.text()
            counted[name] = len(calls)
    await service.stop()
    del counted["warm-up"]  # the first request also fills the session cache
    return counted


async def fixed_load(clients: int, first: int, count: int, send: Send, into: Samples) -> None:
    """`clients` workers send requests `first`..`first + count - 1` back to back; add them to `into`."""
    numbers = iter(range(first, first + count))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients * 2)) as session:
        async def worker() -> None:
            for n in numbers:
                started = time.perf_counter()
                try:
                    status = await send(session, n)
                except aiohttp.ClientError:
                    status = 0
                into.add(time.perf_counter() - started, status)
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        into.wall_s += time.perf_counter() - t0


@asynccontextmanager
async def started(role: str, env: dict[str, str], clients: int) -> AsyncIterator[dict[str, Send]]:
    """Run one server role in its own process; yield its request senders by endpoint."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "identities.json"
        child_env = {**env, "BENCH_ROLE": role, "BENCH_OUT": str(out), "BENCH_USERS": str(clients)}
        async with running_server(child_env, script=str(ROOT / "bench" / "points.py")) as base:
            for _ in range(100):
                if out.exists() and out.stat().st_size:
                    break
                await asyncio.sleep(0.05)
            who = json.loads(out.read_text())
            prefix = base + ("/api/points" if role == "app" else "/bare")

            def call(method: str, url: str, body: dict | None = None) -> Send:
                async def send(session: aiohttp.ClientSession, n: int) -> int:
                    headers = {**who[n % len(who)], "Idempotency-Key": f"{role}-{n}"}
                    async with session.request(method, url, json=body, headers=headers) as resp:
                        await resp.read()
                        return resp.status
                return send

            yield {"spend": call("POST", prefix + "/spend", {"amount": 1}), "balance": call("GET", prefix + "/balance"),
                   "health": call("GET", base + "/api/health")}


async def measure(env: dict[str, str], clients: int, totals: dict[str, int], rounds: int) -> dict[str, Samples]:
    """Both servers side by side; each round loads every endpoint on each, alternating who goes first.

    Interleaving in rounds keeps the two stores the same size and spreads any background load on
    the machine evenly over both servers.
    """
    samples = {f"{role} {ep}": Samples(f"{role} {ep}") for ep in totals for role in ("app", "bare")}
    async with started("app", env, clients) as app, started("bare", env, clients) as bare:
        for sends in (app, bare):
            await fixed_load(clients, 0, clients * 2, sends["balance"], Samples("warm-up"))
        for r in range(rounds):
            for ep, total in totals.items():
                chunk = total // rounds
                order = (("app", app), ("bare", bare)) if r % 2 == 0 else (("bare", bare), ("app", app))
                for role, sends in order:
                    await fixed_load(clients, r * chunk, chunk, sends[ep], samples[f"{role} {ep}"])
    return samples


async def run(clients: int, spends: int, balances: int, rounds: int) -> dict:
    """Count store calls, measure both servers, print the table and the JSON summary."""
    env = {"RATE_LIMIT_PER_MINUTE": "100000000", "JOBS_ENABLED": "false", "LOG_LEVEL": "WARNING",
           "PYTHONPATH": str(ROOT)}
    redis_url = DEFAULT_REDIS if await redis_reachable(DEFAULT_REDIS) else None
    if redis_url:
        env.update(REDIS_URL=redis_url, REDIS_PREFIX=f"bench:points:{os.getpid()}:")
    configure_logging("WARNING", False)
    counted = await count_store_calls(redis_url)
    if counted != {"spend": SPEND_CALLS, "balance": BALANCE_CALLS}:
        raise SystemExit(f"store calls differ: app {counted}, bare spend={SPEND_CALLS} balance={BALANCE_CALLS}")
    measured = await measure(env, clients, {"spend": spends, "balance": balances, "health": balances}, rounds)
    result: dict = {}
    for name in ("spend", "balance", "health"):
        ours, bare = measured[f"app {name}"], measured[f"bare {name}"]
        result[name] = {"rps": round(ours.rate, 1), "p50_ms": round(ours.pct(50), 2), "p99_ms": round(ours.pct(99), 2),
                        "bare_rps": round(bare.rate, 1), "bare_p50_ms": round(bare.pct(50), 2),
                        "bare_p99_ms": round(bare.pct(99), 2), "ratio": round(ours.rate / bare.rate, 3),
                        "errors": sum(n for s, n in ours.statuses.items() if s != 200)}
    print(f"{clients} clients; store calls per request on both servers: spend {SPEND_CALLS}, balance {BALANCE_CALLS}, "
          "health 0 (health: the shared request pipeline alone)")
    print(f"{'endpoint':<9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'bare req/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'ratio':>8}")
    for name in ("spend", "balance", "health"):
        r = result[name]
        print(f"{name:<9}{r['rps']:>9.1f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}{r['bare_rps']:>12.1f}"
              f"{r['bare_p50_ms']:>9.1f}{r['bare_p99_ms']:>9.1f}{r['ratio']:>8.2f}")
    result["clients"] = clients
    result["target_met"] = all(result[k]["ratio"] >= 0.70 for k in ("spend", "balance"))
    print(json.dumps(result, indent=2))
    return result


def main() -> None:
    role = os.environ.get("BENCH_ROLE")
    if role:
        asyncio.run((serve_app if role == "app" else serve_bare)(Path(os.environ["BENCH_OUT"])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=USERS)
    parser.add_argument("--spends", type=int, default=1500)
    parser.add_argument("--balances", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(run(args.clients, args.spends, args.balances, args.rounds))


if __name__ == "__main__":
    main()
