"""Outage benchmark: seconds from RuStore answering again to every purchase paid during the outage being credited.

Run: `python -m bench.outage` (`--pending`, `--outage-s`, `--reset-s`, `--probe-s`, `--rate` change it).
Emulator and server in their own processes (as `bench.webhooks`), a fresh server per phase:

* baseline: RuStore up; `--pending` users each pay and verify; per user, seconds from paying to
  credited (the verify answer). This is the usual path, for comparison.
* outage: the emulator answers 503 to every call; the same number of users pay and verify (503, the
  claim is recorded), RuStore stays down `--outage-s` seconds, then the fault is lifted. Per user,
  seconds from the fault being lifted to the balance showing the points (polled), plus the server's own
  `rustore_outage_to_settled_seconds` histogram. Target: p99 < 60 s for a few hundred pending users.

Server settings are the production defaults unless given (breaker reset 30 s, probe 10 s, 20
re-checks per second), so the bound is measured as deployed. Every user must end with exactly one
credit of 100 points.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.common import DEFAULT_REDIS, Samples, redis_reachable, running_server
from bench.webhooks import APP_ID, KEY_ID, PACKAGE, PRODUCT, buy, call, register, running_emulator
from rustore.emulator import generate_key_pair

METRICS_TOKEN = "bench-outage-metrics-token-0123456789"
POINTS = 100


async def verify(session: aiohttp.ClientSession, base: str, user: dict, sdk: dict) -> int:
    body = {"invoiceId": sdk["invoiceId"], "purchaseId": sdk["purchaseId"], "productId": PRODUCT,
            "orderId": sdk["orderId"], "sandbox": False}
    async with session.post(base + "/api/payments/verify", json=body,
                            headers={"Authorization": f"Bearer {user['accessToken']}"}) as resp:
        await resp.read()
        return resp.status


async def balance(session: aiohttp.ClientSession, base: str, user: dict) -> int:
    return (await call(session, "GET", base + "/api/points/balance", token=user["accessToken"]))["balance"]


async def pay_and_verify(session: aiohttp.ClientSession, base: str, emulator: str, users: list[dict],
                         concurrency: int = 20) -> tuple[Samples, dict[int, int]]:
    """Every user pays once and verifies, `concurrency` at a time; latency from paying to the verify answer."""
    samples, statuses = Samples("pay -> verify answer"), {}
    queue: asyncio.Queue = asyncio.Queue()
    for user in users:
        queue.put_nowait(user)

    async def worker() -> None:
        while not queue.empty():
            user = queue.get_nowait()
            started = time.perf_counter()
            sdk = await buy(session, emulator, user["userId"])
            status = await verify(session, base, user, sdk)
            samples.add(time.perf_counter() - started, status)
            statuses[status] = statuses.get(status, 0) + 1
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    samples.wall_s = time.perf_counter() - t0
    return samples, statuses


async def settled_after(session: aiohttp.ClientSession, base: str, users: list[dict], since: float,
                        limit_s: float) -> Samples:
    """Poll every user's balance until it shows the points; per user, seconds since `since`."""
    samples, waiting = Samples("fault lifted -> credited"), list(users)
    while waiting and time.perf_counter() - since < limit_s:
        seen = await asyncio.gather(*(balance(session, base, user) for user in waiting))
        now = time.perf_counter()
        for user, points in zip(list(waiting), seen, strict=True):
            if points >= POINTS:
                samples.add(now - since, 200)
                waiting.remove(user)
        await asyncio.sleep(0.2)
    for _ in waiting:
        samples.add(limit_s, 0)  # never credited within the limit: counted as an error
    samples.wall_s = time.perf_counter() - since
    return samples


async def histogram(session: aiohttp.ClientSession, base: str, name: str) -> dict[str, float]:
    async with session.get(base + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}) as resp:
        text = await resp.text()
    values = {}
    for match in re.finditer(rf'^{name}_(count|sum) ([0-9.e+]+)$', text, re.M):
        values[match.group(1)] = float(match.group(2))
    buckets = [(float(le), float(v)) for le, v in re.findall(rf'^{name}_bucket{{le="([0-9.e+]+)"}} ([0-9.e+]+)$', text, re.M)]
    count = values.get("count", 0)
    values["p99_bucket_s"] = next((le for le, v in buckets if count and v >= 0.99 * count), float("inf"))
    return values


async def baseline_phase(env: dict, emulator: str, args: argparse.Namespace) -> dict:
    async with running_server(env) as base, aiohttp.ClientSession() as session:
        users = await register(session, base, args.pending)
        samples, statuses = await pay_and_verify(session, base, emulator, users)
        balances = await asyncio.gather(*(balance(session, base, u) for u in users))
    return {"samples": samples, "statuses": statuses, "credited_once": sum(b == POINTS for b in balances)}


async def outage_phase(env: dict, emulator: str, args: argparse.Namespace) -> dict:
    async with running_server(env) as base, aiohttp.ClientSession() as session:
        users = await register(session, base, args.pending)
        await call(session, "POST", emulator + "/_emulator/faults", {"endpoint": "*", "mode": "error", "status": 503})
        _, statuses = await pay_and_verify(session, base, emulator, users)
        await asyncio.sleep(args.outage_s)
        await call(session, "DELETE", emulator + "/_emulator/faults")
        lifted = time.perf_counter()
        settled = await settled_after(session, base, users, lifted, args.limit_s)
        await asyncio.sleep(1.0)  # anything credited twice would show by now
        balances = await asyncio.gather(*(balance(session, base, u) for u in users))
        server = await histogram(session, base, "rustore_outage_to_settled_seconds")
    return {"samples": settled, "verify_statuses": statuses, "server": server,
            "credited_once": sum(b == POINTS for b in balances), "credited_twice": sum(b > POINTS for b in balances)}


async def run(args: argparse.Namespace) -> dict:
    pair = generate_key_pair()
    with tempfile.TemporaryDirectory() as tmp:
        public_key = Path(tmp) / "public.pem"
        pem = pair.public_key_pem
        public_key.write_text(pem if isinstance(pem, str) else pem.decode())
        async with running_emulator(public_key, base64.b64encode(os.urandom(32)).decode()) as emulator:
            env = {"RUSTORE_API_URL": emulator, "RUSTORE_KEY_ID": KEY_ID, "RUSTORE_PRIVATE_KEY": pair.private_key_b64,
                   "RUSTORE_APP_ID": str(APP_ID), "RUSTORE_PACKAGE_NAME": PACKAGE, "METRICS_TOKEN": METRICS_TOKEN,
                   "RATE_LIMIT_PER_MINUTE": "100000000", "AUTH_RATE_LIMIT_PER_MINUTE": "100000000",
                   "BCRYPT_ROUNDS": "4", "JOBS_ENABLED": "false", "APP_ENV": "development",
                   "RUSTORE_RETRY_DEADLINE_S": str(args.retry_deadline_s)}
            for name, value in (("RUSTORE_BREAKER_RESET_S", args.reset_s), ("RUSTORE_RECOVERY_PROBE_S", args.probe_s),
                                ("RUSTORE_RECOVERY_RATE_PER_S", args.rate)):
                if value is not None:
                    env[name] = str(value)
            if args.redis and await redis_reachable(args.redis):
                env |= {"REDIS_URL": args.redis, "REDIS_PREFIX": f"bench:outage:{os.getpid()}:"}
            baseline = await baseline_phase(env, emulator, args)
            outage = await outage_phase(env, emulator, args)
    for samples in (baseline["samples"], outage["samples"]):
        print(samples.row())
    settled = outage["samples"]
    result = {
        "pending": args.pending,
        "baseline_pay_to_credited": {"p50_s": baseline["samples"].pct(50) / 1000, "p99_s": baseline["samples"].pct(99) / 1000,
                                     "statuses": baseline["statuses"], "credited_once": baseline["credited_once"]},
        "outage": {"outage_s": args.outage_s, "verify_statuses": outage["verify_statuses"],
                   "lifted_to_credited_p50_s": settled.pct(50) / 1000, "lifted_to_credited_p99_s": settled.pct(99) / 1000,
                   "lifted_to_credited_max_s": max(settled.latencies, default=float("nan")),
                   "not_credited": settled.statuses.get(0, 0), "credited_once": outage["credited_once"],
                   "credited_twice": outage["credited_twice"],
                   "server_outage_to_settled": {"count": outage["server"].get("count", 0),
                                                "mean_s": (outage["server"]["sum"] / outage["server"]["count"]
                                                           if outage["server"].get("count") else None),
                                                "p99_bucket_s": outage["server"]["p99_bucket_s"]}},
        "targets_met": {"outage_to_credited_p99_lt_60s": settled.pct(99) / 1000 < 60
                        and outage["credited_once"] == args.pending and outage["credited_twice"] == 0},
    }
    print(json.dumps(result, indent=2))
    return result


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pending", type=int, default=300, help="users who pay during the outage (and in the baseline)")
    parser.add_argument("--outage-s", type=float, default=30.0, help="how long RuStore stays down after the last payment")
    parser.add_argument("--limit-s", type=float, default=180.0, help="give up waiting for credits after this long")
    parser.add_argument("--reset-s", type=float, default=None, help="RUSTORE_BREAKER_RESET_S (default: the app's)")
    parser.add_argument("--probe-s", type=float, default=None, help="RUSTORE_RECOVERY_PROBE_S (default: the app's)")
    parser.add_argument("--rate", type=float, default=None, help="RUSTORE_RECOVERY_RATE_PER_S (default: the app's)")
    parser.add_argument("--retry-deadline-s", type=float, default=2.0, help="RUSTORE_RETRY_DEADLINE_S for the run")
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="Redis for the server (embedded store if unreachable)")
    return parser.parse_args(argv)


def main() -> None:
    asyncio.run(run(parse()))


if __name__ == "__main__":
    main()
