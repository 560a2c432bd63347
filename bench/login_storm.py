"""Login storm benchmark: profile latency with and without a concurrent bcrypt (cost 12) login storm.

Run: `python -m bench.login_storm` (add `--seconds 20` for a longer run). The server runs as a
separate process on its defaults plus a raised rate limit, with Redis at BENCH_REDIS_URL when
reachable (else the in-process fallback). Target: profile p99 under the storm < 50 ms on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json

import aiohttp

from bench.common import DEFAULT_REDIS, closed_loop, redis_reachable, running_server

PASSWORD = "benchmark password"


async def register(session: aiohttp.ClientSession, base: str, email: str) -> dict:
    async with session.post(base + "/api/auth/register", json={"email": email, "password": PASSWORD}) as resp:
        assert resp.status == 201, await resp.text()
        return await resp.json()


async def run(seconds: float, profile_clients: int, storm_clients: int) -> dict:
    # Logins in flight hold a failed-login reservation until their password is checked: 32 clients on
    # one account from one address need more than the production (email, address) budget.
    env = {"RATE_LIMIT_PER_MINUTE": "100000000", "AUTH_RATE_LIMIT_PER_MINUTE": "100000000",
           "LOGIN_FAILURES_PER_PAIR": "100000", "LOGIN_FAILURES_PER_EMAIL": "100000",
           "BCRYPT_ROUNDS": "12", "JOBS_ENABLED": "false"}
    if await redis_reachable(DEFAULT_REDIS):
        env["REDIS_URL"] = DEFAULT_REDIS
        env["REDIS_PREFIX"] = "bench:storm:"
    async with running_server(env) as base:
        async with aiohttp.ClientSession() as session:
            users = [await register(session, base, f"profile{i}@bench.example") for i in range(profile_clients)]
            await register(session, base, "storm@bench.example")

        async def profile(session: aiohttp.ClientSession, n: int) -> int:
            token = users[n % len(users)]["accessToken"]
            async with session.get(base + "/api/user/profile", headers={"Authorization": f"Bearer {token}"}) as r:
                await r.read()
                return r.status

        async def login(session: aiohttp.ClientSession, n: int) -> int:
            async with session.post(base + "/api/auth/login",
                                    json={"email": "storm@bench.example", "password": PASSWORD}) as r:
                await r.read()
                return r.status

        quiet = await closed_loop("profile (no storm)", profile_clients, seconds, profile)
        storm_profile, storm_logins = await asyncio.gather(
            closed_loop("profile (during login storm)", profile_clients, seconds, profile),
            closed_loop("login storm (bcrypt cost 12)", storm_clients, seconds, login),
        )
    for s in (quiet, storm_profile, storm_logins):
        print(s.row())
    result = {
        "profile_quiet": {"p50_ms": quiet.pct(50), "p99_ms": quiet.pct(99), "rps": quiet.rate},
        "profile_storm": {"p50_ms": storm_profile.pct(50), "p99_ms": storm_profile.pct(99), "rps": storm_profile.rate},
        "logins": {"ok_per_s": storm_logins.statuses.get(200, 0) / storm_logins.wall_s,
                   "busy_503": storm_logins.statuses.get(503, 0)},
        "target_met": storm_profile.pct(99) < 50,
    }
    print(json.dumps(result, indent=2))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--profile-clients", type=int, default=8)
    parser.add_argument("--storm-clients", type=int, default=32)
    args = parser.parse_args()
    asyncio.run(run(args.seconds, args.profile_clients, args.storm_clients))


if __name__ == "__main__":
    main()
