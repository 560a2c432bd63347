"""Redis dying under the API: requests keep being served (rate limits fail open, loudly), nothing ends up wrong.

The decision these tests hold: without Redis the API keeps serving. Rate limits fail open, counted
in `rate_limit_fail_open_total` with a warning in the log; sessions are checked in MongoDB, so a
session ended before or during the outage stays ended; `/api/ready` answers 503 naming redis so a
load balancer or an operator sees it. Once Redis is back the API uses it again by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from loguru import logger

from tests.faults.support import METRICS_TOKEN, assert_wallet, payment_body, sample, scrape
from tests.handlers.test_conventions import assert_error_shape
from tests.support.overlap import InFlight

LIMIT = 20  # per-IP requests per minute in the rate-limit test


@contextlib.contextmanager
def warnings_logged():
    """Collect the messages of WARNING and worse log records while the block runs."""
    messages: list[str] = []
    handler = logger.add(lambda message: messages.append(message.record["message"]), level="WARNING")
    try:
        yield messages
    finally:
        logger.remove(handler)


async def login(api, user: dict, password: str | None = None, **extra):
    body = {"email": user["email"], "password": password or user["password"], **extra}
    return await api.post("/api/auth/login", body)


async def keep_reading(api, token: str, stop: asyncio.Event, flight: InFlight, statuses: list[int]) -> None:
    """Profile and balance reads, back to back, until told to stop; appends the statuses seen."""
    while not stop.is_set():
        for path in ("/api/user/profile", "/api/points/balance"):
            statuses.append((await flight.run(api.get(path, token=token))).status)


async def test_api_keeps_serving_when_redis_is_killed_mid_traffic(emulated, private_redis):
    env = await emulated(webhooks=False, redis_url=private_redis.url, metrics_token=METRICS_TOKEN)
    api = env.api
    user = await api.register(deviceId="phone")
    token = user["accessToken"]
    ended = (await login(api, user)).json  # a second sign-in, ended while Redis still runs
    assert (await api.post("/api/auth/logout", {}, token=ended["accessToken"])).status == 204
    assert (await api.post("/api/payments/verify", payment_body(env.buy("points_100", user=user)), token=token)).status == 200
    fail_open_before = sample(await scrape(api), "rate_limit_fail_open_total")

    with warnings_logged() as warnings:
        stop, flight, statuses = asyncio.Event(), InFlight(), []
        readers = [asyncio.ensure_future(keep_reading(api, token, stop, flight, statuses)) for _ in range(4)]
        await asyncio.sleep(0.2)
        in_flight, answered = flight.now, len(statuses)
        private_redis.kill()  # SIGKILL while requests are in flight
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.gather(*readers)
        assert in_flight == 4 and answered > 0  # every reader had a request out when Redis died...
        assert len(statuses) - answered > 4  # ...and kept being answered after it
        assert len(statuses) > 20 and set(statuses) == {200}  # not one 500 around the moment Redis died

        profile = await api.get("/api/user/profile", token=token)
        assert profile.status == 200 and profile.json["points"]["balance"] == 100
        assert int(profile.headers["X-RateLimit-Limit"]) > 0 and "X-RateLimit-Remaining" in profile.headers
        spend = await api.post("/api/points/spend", {"amount": 30}, token=token, headers={"Idempotency-Key": "down-1"})
        assert spend.status == 200 and spend.json["balance"] == 70, spend.text
        replay = await api.post("/api/points/spend", {"amount": 30}, token=token, headers={"Idempotency-Key": "down-1"})
        assert replay.json["transaction"]["id"] == spend.json["transaction"]["id"] and replay.json["balance"] == 70
        bought = await api.post("/api/payments/verify", payment_body(env.buy("points_500", user=user)), token=token)
        assert bought.status == 200 and bought.json["balance"] == 570, bought.text

        # Signing in still works (bcrypt runs in its pool; the login budgets fail open) and sessions live in MongoDB.
        again = await login(api, user, deviceId="phone")
        assert again.status == 200, again.text
        fresh = await api.register()
        assert (await api.get("/api/user/profile", token=fresh["accessToken"])).status == 200
        rotated = await api.post("/api/auth/refresh", {"refreshToken": again.json["refreshToken"]})
        assert rotated.status == 200, rotated.text
        assert_error_shape(await api.get("/api/user/profile", token=ended["accessToken"]), 401, "session_ended")
        assert (await api.post("/api/auth/logout", {}, token=rotated.json["accessToken"])).status == 204
        assert_error_shape(await api.get("/api/user/profile", token=rotated.json["accessToken"]), 401, "session_ended")
        assert (await api.get("/api/products")).status == 200  # the catalog degrades to its settings copy

        ready = await api.get("/api/ready")
        assert_error_shape(ready, 503, "dependency_unavailable")
        assert ready.json["details"]["down"] == ["redis"] and ready.json["details"]["checks"]["mongo"] == "ok"
        counted = sample(await scrape(api), "rate_limit_fail_open_total")
        assert counted > fail_open_before
        assert (await api.get("/api/user/profile", token=token)).status == 200
        assert sample(await scrape(api), "rate_limit_fail_open_total") > counted  # every request let through counts
    assert "Redis unavailable: rate limit failing open" in warnings
    await assert_wallet(env, user, [("buy", 100), ("spend", -30), ("buy", 500)])


async def test_rate_limits_fail_open_while_redis_is_down_and_apply_again_once_it_is_back(start_server, private_redis):
    service, api = await start_server(redis_url=private_redis.url, rate_limit_per_minute=LIMIT)
    user = await api.register()
    email = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    private_redis.kill()
    for _ in range(LIMIT + 5):  # over the per-IP budget, and still served
        resp = await api.get("/api/user/profile", token=user["accessToken"])
        assert resp.status == 200 and resp.headers["X-RateLimit-Remaining"] == str(LIMIT)
    for _ in range(7):  # over the failed-login budget of (email, IP), and still only told the password is wrong
        assert_error_shape(await login(api, {"email": email, "password": "wrong password"}), 401, "invalid_credentials")

    private_redis.start()  # empty, on the same port: the client reconnects by itself
    for _ in range(50):
        if (await api.get("/api/ready")).status == 200:
            break
        await asyncio.sleep(0.05)
    assert (await api.get("/api/ready")).status == 200
    # After a failure the app skips Redis for a few seconds (core/redis_health.py), so a hung Redis
    # costs one timeout per pause rather than one per request; limits apply again once it re-arms.
    for _ in range(200):
        if service.ctx.redis_health.available():
            break
        await asyncio.sleep(0.05)
    assert service.ctx.redis_health.available()
    for _ in range(5):
        assert_error_shape(await login(api, {"email": email, "password": "wrong password"}), 401, "invalid_credentials")
    assert_error_shape(await login(api, {"email": email, "password": "wrong password"}), 429, "too_many_login_attempts")
    # A fixed per-minute window may roll over once during the loop, hence up to twice the budget.
    for _ in range(2 * LIMIT + 2):
        resp = await api.get("/api/user/profile", token=user["accessToken"])
        if resp.status != 200:
            break
    assert_error_shape(resp, 429, "rate_limited")
    assert int(resp.headers["Retry-After"]) >= 1 and resp.headers["X-RateLimit-Remaining"] == "0"


async def test_a_hung_redis_costs_one_timeout_not_one_per_request(start_server, private_redis):
    service, api = await start_server(redis_url=private_redis.url)
    user = await api.register()
    private_redis.freeze()
    try:
        first = await api.get("/api/user/profile", token=user["accessToken"])  # waits out the client timeout once
        assert first.status == 200
        assert not service.ctx.redis_health.available()
        started = asyncio.get_running_loop().time()
        statuses = [(await api.get("/api/user/profile", token=user["accessToken"])).status for _ in range(20)]
        elapsed = asyncio.get_running_loop().time() - started
    finally:
        private_redis.thaw()
    assert statuses == [200] * 20
    # Without the shared switch each request would wait for Redis (about 2 s each, 40 s in all).
    assert elapsed < 5, f"requests waited for the hung Redis: {elapsed:.1f}s for 20"
