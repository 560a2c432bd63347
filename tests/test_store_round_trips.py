"""The store round trips each endpoint makes, counted over HTTP, match the table in docs/capacity.md.

The capacity estimate multiplies these counts by MongoDB's latency; a change that adds a round trip to an endpoint
fails here until the table (and so the estimate) says so. Counted after a warm-up request, with the session cache
warm, as in steady traffic.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from mongomock_motor import AsyncMongoMockClient

from core.emulated import attach
from tests.support.yielding import YieldingDatabase

PAGE = Path(__file__).resolve().parent.parent / "docs" / "capacity.md"


class CountingClient:
    """A mongomock client whose databases count every collection call (one call = one round trip)."""

    def __init__(self) -> None:
        self.client = AsyncMongoMockClient(tz_aware=True)
        self.calls: Counter[str] = Counter()

    def __getitem__(self, name: str) -> Any:
        return YieldingDatabase(self.client[name], lambda collection, method: self.calls.update([collection]))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def documented() -> dict[str, int]:
    table = PAGE.read_text(encoding="utf-8").split("<!-- round-trips -->")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^\| `([^`]+)` \| (\d+) \|", table, re.M)}


async def test_store_round_trips_per_endpoint_match_the_capacity_table(emulated):
    store = CountingClient()
    env = await emulated(mongo=store, webhooks=False)
    api, measured = env.api, {}

    async def count(name: str, call: Any) -> Any:
        await env.settle()
        store.calls.clear()
        result = await call
        await env.settle()  # background work the request started (webhook processing) counts too
        measured[name] = sum(store.calls.values())
        return result

    user = await api.register()
    await api.register()  # warm-up: the catalog, indexes and caches are in place from here on
    await count("POST /api/auth/register", api.post("/api/auth/register",
                                                     {"email": "count@example.com", "password": "correct horse 1"}))
    await api.post("/api/auth/login", {"email": user["email"], "password": user["password"]})
    login = await count("POST /api/auth/login", api.post("/api/auth/login",
                                                        {"email": user["email"], "password": user["password"]}))
    await count("POST /api/auth/refresh", api.post("/api/auth/refresh", {"refreshToken": login.json["refreshToken"]}))
    token = user["accessToken"]
    for name, path in (("GET /api/user/profile", "/api/user/profile"), ("GET /api/points/balance", "/api/points/balance"),
                       ("GET /api/points/history", "/api/points/history"), ("GET /api/products", "/api/products"),
                       ("GET /api/customer", "/api/customer")):
        await api.get(path, token=token)
        await count(name, api.get(path, token=token))

    async def verify(product: str) -> Any:
        sdk = env.buy(product, app_user_id=user["userId"])
        body = {"invoiceId": sdk["invoiceId"], "purchaseId": sdk["purchaseId"], "productId": sdk["productId"],
                "sandbox": sdk["sandbox"]}
        return await api.post("/api/payments/verify", body, token=token)

    await verify("points_100")
    credited = await count("POST /api/payments/verify", verify("points_100"))
    assert credited.status == 200, credited.text
    await api.post("/api/points/spend", {"amount": 1, "reason": "warm"}, token=token, headers={"Idempotency-Key": "w"})
    await count("POST /api/points/spend", api.post("/api/points/spend", {"amount": 1, "reason": "count"}, token=token,
                                                   headers={"Idempotency-Key": "c"}))
    greeting = {"kind": "greeting", "occasion": "birthday", "recipientName": "Ann"}
    await api.post("/api/generation/request", greeting, token=token, headers={"Idempotency-Key": "g1"})
    await count("POST /api/generation/request", api.post("/api/generation/request", greeting, token=token,
                                                         headers={"Idempotency-Key": "g2"}))
    attach(env.app, api.base_url)  # from here RuStore notifies: a purchase the app never verifies
    await count("POST /api/webhooks/rustore", _notified_purchase(env, user))

    table = documented()
    assert measured == table, "docs/capacity.md round trips differ; measured:\n" + "\n".join(
        f"| `{name}` | {n} |" for name, n in measured.items())


async def _notified_purchase(env: Any, user: dict) -> None:
    """A purchase whose only news is RuStore's notification (the webhook and its processing)."""
    env.buy("points_100", app_user_id=user["userId"])
    await env.settle()
