"""Open-model load benchmark: a realistic request mix at fixed arrival rates, our server next to a bare Tornado baseline.

Run: `python -m bench.load` (defaults: `--rates 50,100,200 --seconds 30 --users 10000 --entries 100000
--processes 1`). Processes: this one (the load), the RuStore emulator, and per rate a freshly
seeded pair of servers: ours (`bench/seeded_server.py`: the real `server.Service` on the embedded
mongomock store, Redis at BENCH_REDIS_URL) and the bare baseline
(`bench/bare.py`, replaying our recorded store calls); with `--processes 2` each is two processes
with their own identically seeded stores behind `bench/balancer.py`. Per rate each server gets
`--seconds` of Poisson arrivals in alternating halves (ours, bare, bare, ours) after the previous
one went idle, with the mix of `bench.mix` drawn identically for both. Then a login storm
(`--storm-seconds`) with the loop-lag probe. Prints one table per rate and writes artifacts/load-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import pickle
import random
import shutil
import signal
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import DEFAULT_REDIS, ROOT, closed_loop, redis_reachable
from bench.mix import WEIGHTS, Mix, Purchases
from bench.openloop import merge, open_loop, summarize
from bench.procs import load_average, wait_idle
from bench.profile import summarize_profile
from bench.record import make_purchases, record_templates
from bench.report import gc_summary, lag_summary, print_rate, print_storm, rate_result, sustained_rate
from bench.seed import PASSWORD, bench_user
from bench.stack import APP_ID, PRODUCT, Setup, start_emulator, start_role
from core.logs import configure_logging


async def profile_during(pids: list[int], seconds: float, out: Path) -> asyncio.subprocess.Process:
    """py-spy sampling our server processes for `seconds` (raw collapsed stacks into out)."""
    return await asyncio.create_subprocess_exec(
        "py-spy", "record", "--nonblocking", "--rate", "200", "--duration", str(int(seconds)), "--format", "raw",
        "-o", str(out), "--pid", str(pids[0]), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)


async def buy_for(setup: Setup, users: int, count: int, rng: random.Random) -> Purchases:
    """`count` purchases by random seeded users, made in the emulator before the measured window."""
    owners = [rng.randrange(users) for _ in range(count)]
    async with aiohttp.ClientSession() as http:
        sdk, notes = await make_purchases(http, setup.emulator, APP_ID, PRODUCT, owners,
                                          lambda i: bench_user(i).user_id)
    purchases = Purchases()
    purchases.sdk.extend(sdk)
    purchases.notes.extend(notes)
    return purchases


def copy_purchases(p: Purchases) -> Purchases:
    """The same purchases for the other server (the bare one only needs the same request bodies)."""
    out = Purchases()
    out.sdk.extend(p.sdk)
    out.notes.extend(p.notes)
    return out


async def measure_rate(setup: Setup, args: argparse.Namespace, rate: float, templates: Path) -> dict[str, Any]:
    """Fresh seeded servers, then alternating halves of open-model load at `rate` on each; their results."""
    roles = ["ours"] + ([] if args.no_baseline else ["bare"])
    chunks = ["ours", "bare", "bare", "ours"] if len(roles) == 2 else ["ours", "ours"]
    rng = random.Random(args.seed * 1000 + int(rate))
    phases: list[dict[str, Any]] = []
    samples: dict[str, list] = {r: [] for r in roles}
    async with AsyncExitStack() as stack:
        started = await asyncio.gather(*(start_role(stack, setup, r, args.processes, args.users, args.entries, templates)
                                         for r in roles))
        running = dict(zip(roles, started, strict=True))
        count = math.ceil(rate * args.seconds * WEIGHTS["verify"] / 100 * 1.3) + 10
        purchases = {"ours": await buy_for(setup, args.users, count, rng)}
        purchases["bare"] = copy_purchases(purchases["ours"])
        uniform = dict.fromkeys(WEIGHTS, 1) if args.uniform_mix else None
        mixes = {r: Mix(args.users, setup.secret, setup.key_b64, random.Random(0), r, purchases[r], weights=uniform,
                         refresh_once=args.processes > 1)
                 for r in roles}  # one per server: it remembers the refresh tokens that server handed out
        everyone = [c for role in running.values() for c in role.children] + [setup.emulator_child]
        for k, name in enumerate(chunks):
            role, seconds, half = running[name], args.seconds / 2, chunks[:k].count(name)
            # The same seeds for both servers' n-th half: identical arrival times, endpoints and users.
            mix = mixes[name]
            mix.rng, mix.run_id = random.Random(f"{args.seed}-{rate}-{half}"), f"r{rate}-{name}-{half}"
            idle = await wait_idle(everyone)
            phase = {"role": name, "half": half, "idle_wait_s": idle, "loadavg_before": load_average()}
            cpu0, own0, t0 = {c.name: c.cpu() for c in everyone}, time.process_time(), time.time()
            spy = None
            if args.profile_rate == rate and name == "ours" and shutil.which("py-spy"):
                spy = await profile_during([s.pid for s in role.servers], seconds, ROOT / "artifacts" / f"pyspy-{rate:g}.txt")
            part = await open_loop(role.base, lambda m=mix: m.build(m.pick()), rate, seconds, cap=args.cap,
                                   timeout_s=args.timeout, rng=random.Random(f"arrivals-{args.seed}-{rate}-{half}"),
                                   poisson=args.arrivals == "poisson")
            if spy is not None:
                await spy.wait()
            phase.update(t0=t0, t1=time.time(), loadavg_after=load_average(),
                         loadgen_cpu_s=round(time.process_time() - own0, 2),
                         cpu_s={c.name: round(c.cpu() - cpu0[c.name], 2) for c in everyone})
            samples[name].append(part)
            phases.append(phase)
    outputs = [json.loads(p.read_text()) for p in running["ours"].outputs]
    return rate_result(rate, {r: merge(s) for r, s in samples.items()}, phases, outputs, args)


async def storm(setup: Setup, args: argparse.Namespace, users: int) -> dict[str, Any]:
    """A login storm (closed loop, bcrypt 12; optional profile reads alongside) with the loop-lag probe; one process."""
    async with AsyncExitStack() as stack:
        role = await start_role(stack, setup, "ours-storm", 1, users, users * 10)
        mix = Mix(users, setup.secret, setup.key_b64, random.Random(7), "storm")
        rng = random.Random(8)

        async def login(http: aiohttp.ClientSession, n: int) -> int:
            async with http.post(role.base + "/api/auth/login",
                                 json={"email": bench_user(rng.randrange(users)).email, "password": PASSWORD}) as r:
                await r.read()
                return r.status

        cpu0, t0, load0 = role.servers[0].cpu(), time.time(), load_average()
        reads: dict[str, Any] = {}
        logins, _ = await asyncio.gather(
            closed_loop("login storm", args.storm_clients, args.storm_seconds, login),
            open_loop(role.base, lambda: mix.build("profile"), args.storm_read_rate, args.storm_seconds, cap=args.cap,
                      timeout_s=args.timeout, samples=reads) if args.storm_read_rate else asyncio.sleep(0))
        t1, cpu = time.time(), role.servers[0].cpu() - cpu0
        load1 = load_average()
    out = json.loads(role.outputs[0].read_text())
    return {"users": users, "clients": args.storm_clients, "seconds": args.storm_seconds, "loadavg": [load0, load1],
            "logins_ok_per_s": round(logins.statuses.get(200, 0) / logins.wall_s, 2), "login_statuses": logins.statuses,
            "login_p50_ms": round(logins.pct(50), 1), "server_cpu_s": round(cpu, 1),
            "profile": summarize(reads["profile"]) if reads else None,
            "lag": lag_summary(out["lag"], t0, t1) | gc_summary(out.get("gc", []), t0, t1)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Everything: emulator, templates, every rate, the storms, the report."""
    redis_url = args.redis
    if not await redis_reachable(redis_url):
        raise SystemExit(f"the load benchmark needs Redis at {redis_url} (BENCH_REDIS_URL)")
    result: dict[str, Any] = {"args": vars(args), "mix_percent": WEIGHTS, "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        async with AsyncExitStack() as stack:
            setup = await start_emulator(stack, work, redis_url)
            templates = await record_templates(setup.env, setup.emulator, APP_ID, PRODUCT, setup.secret, setup.key_b64)
            (work / "templates.pickle").write_bytes(pickle.dumps(templates))
            result["store_calls"] = {t.endpoint: {"answer": len(t.calls), "background": len(t.background)}
                                     for t in templates.values()}
            result["rates"] = []
            for rate in args.rates:
                result["rates"].append(await measure_rate(setup, args, rate, work / "templates.pickle"))
                print_rate(result["rates"][-1], result["store_calls"])
            spy = ROOT / "artifacts" / f"pyspy-{args.profile_rate or 0:g}.txt"
            if args.profile_rate and spy.exists():
                result["profile"] = summarize_profile(spy)
                print(f"\npy-spy at {args.profile_rate:g} req/s (our server): {json.dumps(result['profile'], indent=1)}")
            result["storm"] = [await storm(setup, args, n) for n in args.storm_users if args.storm_seconds > 0]
            for s in result["storm"]:
                print_storm(s)
    result["sustained_rate"] = sustained_rate(result["rates"])
    print(f"\nsustained rate (p95 < {args.target_p95_ms:g} ms on every endpoint, login < {args.login_p95_ms:g} ms; "
          f"errors < 1%): {result['sustained_rate']}")
    (ROOT / "artifacts").mkdir(exist_ok=True)
    out = Path(args.out or ROOT / "artifacts" / f"load-{args.processes}p-{time.strftime('%Y%m%d-%H%M%S')}.json")
    out.write_text(json.dumps(result, indent=1, default=str))
    print(f"written {out}")
    return result


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    floats = lambda text: [float(x) for x in text.split(",") if x]  # noqa: E731
    p.add_argument("--rates", type=floats, default=[50, 100, 200], help="requests/s, comma-separated")
    p.add_argument("--seconds", type=float, default=30, help="measured seconds per server per rate")
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--entries", type=int, default=100_000, help="ledger entries, spread evenly over the users")
    p.add_argument("--processes", type=int, choices=(1, 2), default=1)
    p.add_argument("--cap", type=int, default=100, help="requests in flight before new arrivals are dropped")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds before an unanswered request is an error")
    p.add_argument("--arrivals", choices=("poisson", "constant"), default="poisson")
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--storm-seconds", type=float, default=10, help="0 skips the login storm")
    p.add_argument("--storm-clients", type=int, default=32)
    p.add_argument("--storm-read-rate", type=float, default=0, help="profile reads/s during the storm (0: logins only)")
    p.add_argument("--storm-users", type=lambda t: [int(x) for x in t.split(",")], default=[10_000, 100],
                   help="one storm per data-set size (users, 10 entries each)")
    p.add_argument("--profile-rate", type=float, help="run py-spy on our server during this rate (if installed)")
    p.add_argument("--target-p95-ms", type=float, default=200)
    p.add_argument("--login-p95-ms", type=float, default=1000, help="login's target: bcrypt 12 alone takes ~0.5 s")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--redis", default=DEFAULT_REDIS, help="Redis for the servers (default BENCH_REDIS_URL)")
    p.add_argument("--uniform-mix", action="store_true", help="every endpoint equally often (smoke test)")
    p.add_argument("--out")
    return p.parse_args(argv)


def main() -> None:
    """`python -m bench.load`."""
    configure_logging("WARNING", False)  # the in-process recording app logs like a server
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stopped like Ctrl-C: the children are stopped too
    asyncio.run(run(parse()))


if __name__ == "__main__":
    main()
