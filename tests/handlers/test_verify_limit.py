"""VERIFY_RATE_LIMIT_PER_MINUTE: one account's verify-type calls are capped, and only that account's."""

from __future__ import annotations

from tests.handlers.test_conventions import assert_error_shape
from tests.handlers.test_payments import verify_body
from tests.handlers.test_subscriptions import verify_body as subscription_body

VERIFY_ROUTES = ("/api/payments/verify", "/api/points/buy", "/api/subscriptions/verify", "/api/subscriptions/renew")


def rustore_calls(env) -> int:
    """Requests the emulator served, its token endpoint aside."""
    return sum(n for endpoint, n in env.emulator.stats.items() if endpoint != "auth")


async def test_an_account_over_its_verify_budget_gets_429_and_another_account_does_not(emulated):
    env = await emulated(verify_rate_limit_per_minute=3, webhooks=False)  # only verify calls reach RuStore
    spammer, neighbour = await env.api.register(), await env.api.register()
    sdk = env.buy("points_100", user=spammer)
    answers = [await env.api.post("/api/payments/verify", verify_body(sdk), token=spammer["accessToken"])
               for _ in range(3)]
    assert [a.json["status"] for a in answers] == ["credited", "already_credited", "already_credited"]
    sub = env.subscribe("premium_monthly")
    seen = rustore_calls(env)
    for path, body in (("/api/payments/verify", verify_body(sdk)), ("/api/points/buy", verify_body(sdk)),
                       ("/api/subscriptions/verify", subscription_body(sub)),
                       ("/api/subscriptions/renew", subscription_body(sub))):
        refused = await env.api.post(path, body, token=spammer["accessToken"])
        assert_error_shape(refused, 429, "too_many_requests")
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert rustore_calls(env) == seen  # refused calls never reached RuStore
    # Reading is not limited, and another account verifies as usual.
    assert (await env.api.get("/api/points/balance", token=spammer["accessToken"])).json["balance"] == 100
    own = env.buy("points_500", user=neighbour)
    ok = await env.api.post("/api/points/buy", verify_body(own), token=neighbour["accessToken"])
    assert ok.status == 200 and ok.json["balance"] == 500


async def test_points_buy_counts_once_though_it_runs_the_verify_path(emulated):
    env = await emulated(verify_rate_limit_per_minute=2)
    user = await env.api.register()
    sdk = env.buy("points_100", user=user)
    first = await env.api.post("/api/points/buy", verify_body(sdk), token=user["accessToken"])
    second = await env.api.post("/api/points/buy", verify_body(sdk), token=user["accessToken"])
    assert (first.status, second.status) == (200, 200)
    assert_error_shape(await env.api.post("/api/points/buy", verify_body(sdk), token=user["accessToken"]),
                       429, "too_many_requests")


async def test_openapi_documents_the_429_on_every_verify_route(api):
    spec = (await api.get("/api/openapi.json")).json
    for path in VERIFY_ROUTES:
        reasons = spec["paths"][path]["post"]["responses"]["429"]["content"]["application/json"]["schema"]
        assert "too_many_requests" in reasons["properties"]["reason"]["enum"], path
    login = spec["paths"]["/api/auth/login"]["post"]["responses"]["429"]["content"]["application/json"]["schema"]
    assert "too_many_requests" not in login["properties"]["reason"]["enum"]
