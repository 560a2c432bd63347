"""Webhook benchmark: RuStore notification acknowledgement under 50 concurrent deliveries, and verify at 20 clients.

Run: `python -m bench.webhooks` (`--purchases`, `--duplicates`, `--concurrency`, `--verify-clients`,
`--verifies` change the load). Three processes: this one (the load), the RuStore emulator
(`python -m rustore.emulator`, answering instantly) and our server (`python server.py` on its
development defaults: embedded mongomock store, Redis at BENCH_REDIS_URL when reachable), a fresh
server per phase so both start from an empty store.

Webhooks: the emulator records real purchases (2 notifications each: EXECUTED, CONFIRMED) without
delivering them; this process encrypts them with the console key and POSTs them, plus redeliveries
of random ones, from `--concurrency` workers. Every accepted notification is processed in the
server's background (RuStore re-query, credit) while the others are being acknowledged, so the
acknowledgement latency includes that competition. The steady-state row leaves out the first
2 x concurrency answers (50 connections opened at once, cold code paths). Target: ack p99 < 100 ms.
Verify: `--verify-clients` users each verify their own fresh purchases back to back. Target: p99 < 100 ms.
The embedded store scans whole collections per query, so both grow slower as it fills; set
MONGO_URL to measure against a real MongoDB (each server gets a database of its own, dropped afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from bench.common import DEFAULT_REDIS, Samples, free_port, redis_reachable, running_child, running_server
from rustore.emulator import encrypt_payload, generate_key_pair

APP_ID, PACKAGE, KEY_ID, PRODUCT = 3399750, "com.example.bench", "1001", "points_100"
PASSWORD = "benchmark password"


@asynccontextmanager
async def running_emulator(public_key_file: Path, notification_key: str) -> AsyncIterator[str]:
    """`python -m rustore.emulator` in a child process (notifications recorded, not delivered); yields its URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "rustore.emulator", "--port", str(port), "--app-id", str(APP_ID),
            "--package-name", PACKAGE, "--key-id", KEY_ID, "--public-key-file", str(public_key_file),
            "--notification-key", notification_key]
    async with running_child(argv, base + "/_emulator/state", attempts=100):
        async with aiohttp.ClientSession() as session:
            await call(session, "POST", f"{base}/_emulator/apps/{APP_ID}/products",
                       {"productId": PRODUCT, "productType": "consumable", "price": 9900})
        yield base


async def call(session: aiohttp.ClientSession, method: str, url: str, body: dict | None = None,
               token: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.request(method, url, json=body, headers=headers) as resp:
        data = await resp.json(content_type=None)
        if resp.status >= 400:
            raise RuntimeError(f"{method} {url} -> {resp.status}: {data}")
        return data


async def register(session: aiohttp.ClientSession, base: str, n: int) -> list[dict]:
    users = []
    for i in range(n):
        users.append(await call(session, "POST", base + "/api/auth/register",
                                {"email": f"bench-{i}-{os.getpid()}@bench.example", "password": PASSWORD}))
    return users


async def buy(session: aiohttp.ClientSession, emulator: str, app_user_id: str | None) -> dict:
    body = {"productId": PRODUCT, **({"appUserId": app_user_id} if app_user_id else {})}
    return await call(session, "POST", f"{emulator}/_emulator/apps/{APP_ID}/purchases", body)


async def fixed_load(name: str, concurrency: int, jobs: list, send) -> Samples:
    """`concurrency` workers take jobs from one queue until it is empty; one latency sample per job."""
    samples, queue = Samples(name), asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency * 2)) as session:
        async def worker() -> None:
            while not queue.empty():
                job = queue.get_nowait()
                started = time.perf_counter()
                try:
                    status = await send(session, job)
                except aiohttp.ClientError:
                    status = 0
                samples.add(time.perf_counter() - started, status)
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        samples.wall_s = time.perf_counter() - t0
    return samples


async def metric_values(session: aiohttp.ClientSession, base: str) -> dict[str, float]:
    async with session.get(base + "/metrics") as resp:
        text = await resp.text()
    pattern = r'^(webhooks_total\{outcome="(\w+)"\}|webhook_processing_lag_seconds_(sum|count)) ([0-9.e+]+)$'
    values = {}
    for match in re.finditer(pattern, text, re.M):
        values[match.group(2) or f"lag_{match.group(3)}"] = float(match.group(4))
    return values


async def webhook_phase(env: dict, emulator: str, key: str, args: argparse.Namespace) -> dict:
    async with running_server(env) as base, aiohttp.ClientSession() as session:
        users = await register(session, base, 50)
        for i in range(args.purchases):
            await buy(session, emulator, users[i % len(users)]["userId"])
        notes = [n for n in await call(session, "GET", emulator + "/_emulator/notifications")
                 if n["notificationType"] == "INVOICE_STATUS"]
        deliveries = [("new", n) for n in notes] + [("redelivery", n) for n in
                                                    random.Random(7).choices(notes, k=args.duplicates)]
        random.Random(8).shuffle(deliveries)
        bodies = [(kind, json.dumps({"id": n["id"], "timestamp": n["createdAt"],
                                     "payload": encrypt_payload(n["content"], key)}).encode()) for kind, n in deliveries]
        by_kind = {kind: Samples(f"  of which {kind}") for kind in ("new", "redelivery")}
        finished: list[tuple[float, float, int]] = []

        async def deliver(client: aiohttp.ClientSession, job: tuple[str, bytes]) -> int:
            started = time.perf_counter()
            async with client.post(base + "/api/webhooks/rustore", data=job[1],
                                   headers={"Content-Type": "application/json"}) as resp:
                await resp.read()
            by_kind[job[0]].add(time.perf_counter() - started, resp.status)
            finished.append((time.perf_counter(), time.perf_counter() - started, resp.status))
            return resp.status

        acks = await fixed_load(f"webhook ack ({args.concurrency} concurrent)", args.concurrency, bodies, deliver)
        # The first 2 x concurrency answers include opening `concurrency` connections at once (and cold
        # code paths); the rest is the steady state of a sender keeping 50 deliveries in flight.
        steady = Samples("  steady state (after warm-up)")
        for _, latency, status in sorted(finished)[2 * args.concurrency:]:
            steady.add(latency, status)
        by_kind["steady"] = steady
        for samples in by_kind.values():
            samples.wall_s = acks.wall_s
        acked_at = time.perf_counter()
        while True:  # processing continues in the server's background after the 200s
            values = await metric_values(session, base)
            done = sum(values.get(k, 0) for k in ("processed", "dead")) + values.get("failed", 0)
            if done >= len(notes) or time.perf_counter() - acked_at > 120:
                break
            await asyncio.sleep(0.05)
        drain_s = time.perf_counter() - acked_at
    return {"acks": acks, "by_kind": by_kind, "notifications": len(notes), "deliveries": len(bodies),
            "drain_s": drain_s, "values": values}


async def verify_phase(env: dict, emulator: str, args: argparse.Namespace) -> Samples:
    async with running_server(env) as base, aiohttp.ClientSession() as session:
        users = await register(session, base, args.verify_clients)
        jobs = []
        for i in range(args.verifies):
            user = users[i % len(users)]
            sdk = await buy(session, emulator, None)
            jobs.append((user["accessToken"], {"invoiceId": sdk["invoiceId"], "purchaseId": sdk["purchaseId"],
                                               "productId": PRODUCT, "orderId": sdk["orderId"], "sandbox": False}))
        await call(session, "POST", base + "/api/payments/verify", jobs.pop()[1], token=jobs[-1][0])  # warm-up

        async def verify(client: aiohttp.ClientSession, job: tuple[str, dict]) -> int:
            async with client.post(base + "/api/payments/verify", json=job[1],
                                   headers={"Authorization": f"Bearer {job[0]}"}) as resp:
                await resp.read()
                return resp.status

        return await fixed_load(f"verify ({args.verify_clients} clients)", args.verify_clients, jobs, verify)


async def run(args: argparse.Namespace) -> dict:
    pair, key = generate_key_pair(), base64.b64encode(os.urandom(32)).decode()
    with tempfile.TemporaryDirectory() as tmp:
        public_key = Path(tmp) / "public.pem"
        public_key.write_text(pair.public_key_pem if isinstance(pair.public_key_pem, str) else pair.public_key_pem.decode())
        async with running_emulator(public_key, key) as emulator:
            env = {"RUSTORE_API_URL": emulator, "RUSTORE_KEY_ID": KEY_ID, "RUSTORE_PRIVATE_KEY": pair.private_key_b64,
                   "RUSTORE_APP_ID": str(APP_ID), "RUSTORE_PACKAGE_NAME": PACKAGE, "RUSTORE_NOTIFICATION_KEY": key,
                   "RUSTORE_WEBHOOK_ALLOWED_IPS": "127.0.0.0/8", "RATE_LIMIT_PER_MINUTE": "100000000",
                   "AUTH_RATE_LIMIT_PER_MINUTE": "100000000", "BCRYPT_ROUNDS": "4", "JOBS_ENABLED": "false",
                   "VERIFY_RATE_LIMIT_PER_MINUTE": "100000000", "APP_ENV": "development"}
            if await redis_reachable(DEFAULT_REDIS):
                env |= {"REDIS_URL": DEFAULT_REDIS, "REDIS_PREFIX": f"bench:webhooks:{os.getpid()}:"}
            hooks = await webhook_phase(env, emulator, key, args)
            verifies = await verify_phase(env, emulator, args)
    acks, values = hooks["acks"], hooks["values"]
    for samples in (acks, *hooks["by_kind"].values(), verifies):
        print(samples.row())
    lag_mean = values.get("lag_sum", 0) / values["lag_count"] if values.get("lag_count") else None
    result = {
        "webhook_ack": {"concurrency": args.concurrency, "deliveries": hooks["deliveries"],
                        "p50_ms": acks.pct(50), "p95_ms": acks.pct(95), "p99_ms": acks.pct(99),
                        "max_ms": max(acks.latencies) * 1000, "rps": acks.rate, "statuses": acks.statuses,
                        **{f"{kind}_p99_ms": s.pct(99) for kind, s in hooks["by_kind"].items()}},
        "webhook_processing": {"notifications": hooks["notifications"],
                               **{k: values.get(k, 0) for k in ("received", "duplicate", "processed", "failed", "dead")},
                               "drain_after_last_ack_s": round(hooks["drain_s"], 3),
                               "mean_lag_s": round(lag_mean, 3) if lag_mean is not None else None},
        "verify": {"clients": args.verify_clients, "requests": len(verifies.latencies), "p50_ms": verifies.pct(50),
                   "p95_ms": verifies.pct(95), "p99_ms": verifies.pct(99), "rps": verifies.rate,
                   "statuses": verifies.statuses},
        "targets_met": {"webhook_ack_p99_lt_100ms": acks.pct(99) < 100,
                        "webhook_ack_steady_p99_lt_100ms": hooks["by_kind"]["steady"].pct(99) < 100,
                        "verify_p99_lt_100ms": verifies.pct(99) < 100},
    }
    print(json.dumps(result, indent=2))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--purchases", type=int, default=400, help="purchases whose 2 notifications are delivered")
    parser.add_argument("--duplicates", type=int, default=200, help="extra redeliveries of random notifications")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--verify-clients", type=int, default=20)
    parser.add_argument("--verifies", type=int, default=600)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
