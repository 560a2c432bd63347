"""Helpers shared by the fault tests: fault shapes, request bodies, wallet checks and metrics scraping."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from documents import wallet
from documents.accounts import parse_id
from documents.wallet import TRANSACTIONS

# RuStore outages as the emulator plays them; each must end in 503 + retry, never in a lost or double credit.
OUTAGES: dict[str, dict[str, Any]] = {
    "timeout": {"mode": "timeout", "delay_s": 1.0},  # longer than FAST_RUSTORE's per-attempt timeout
    "http_500": {"mode": "error", "status": 500},
    "http_502": {"mode": "error", "status": 502},
    "http_503": {"mode": "error", "status": 503},
    "malformed": {"mode": "malformed"},
}
# Small RuStore deadlines so a timed-out call costs fractions of a second; the breaker stays out of the way.
FAST_RUSTORE: dict[str, Any] = {"rustore_timeout_s": 0.2, "rustore_retry_deadline_s": 0.4,
                                "rustore_breaker_threshold": 1000}
METRICS_TOKEN = "fault-tests-scrape-token-0123456789"


class Outage:
    """A RuStore fault that stands until cleared; `hits()` counts the requests it answered so far."""

    def __init__(self, env: Any, endpoint: str) -> None:
        self.env, self.endpoint = env, endpoint
        self.before = dict(env.emulator.stats)

    def hits(self) -> int:
        """Requests the faulted endpoint(s) received since the fault was set: each one met the fault while it stood."""
        stats = self.env.emulator.stats
        return sum(count - self.before.get(name, 0) for name, count in stats.items()
                   if self.endpoint in ("*", name))


def outage(env: Any, name: str, endpoint: str = "*") -> Outage:
    """Make RuStore fail the named way on an endpoint (all of RuStore by default) until cleared."""
    env.emulator.set_fault(endpoint, **OUTAGES[name])
    return Outage(env, endpoint)


def payment_body(sdk: dict) -> dict:
    """What the app sends to /api/payments/verify after the Pay SDK returned `sdk`."""
    return {key: sdk[key] for key in ("invoiceId", "purchaseId", "productId", "orderId", "sandbox")}


def subscription_body(sdk: dict) -> dict:
    """What the app sends to /api/subscriptions/verify after the Pay SDK returned `sdk`."""
    return {key: sdk[key] for key in ("purchaseId", "productId", "orderId", "sandbox")}


async def subscribe(env: Any, user: dict, **params: Any) -> dict:
    """Create a server order and subscribe to premium_monthly through the emulated Pay SDK."""
    order = await env.api.post("/api/subscriptions/create", {"productId": "premium_monthly"}, token=user["accessToken"])
    assert order.status == 201, order.text
    return env.subscribe("premium_monthly", order_id=order.json["orderId"],
                         developer_payload=order.json["developerPayload"], app_user_id=order.json["appUserId"], **params)


async def balance_of(env: Any, user: dict) -> int:
    """The user's balance as the API reports it."""
    resp = await env.api.get("/api/points/balance", token=user["accessToken"])
    assert resp.status == 200, resp.text
    return resp.json["balance"]


async def assert_wallet(env: Any, user: dict, entries: list[tuple[str, int]]) -> None:
    """The user's ledger holds exactly `entries` (oldest first), the balance is their sum, and the audit is clean."""
    db = env.service.ctx.db
    stored = await db[TRANSACTIONS].find({"user_id": parse_id(user["userId"])}).sort("seq", 1).to_list(None)
    assert [(e["type"], e["amount"]) for e in stored] == entries
    total = sum(amount for _, amount in entries)
    assert await balance_of(env, user) == total
    assert (stored[-1]["balance_after"] if stored else 0) == total
    await assert_ledger_clean(db)


async def assert_ledger_clean(db: Any) -> None:
    """Every wallet equals the sum of its entries and no outbox is left pending."""
    audit = await wallet.verify_ledger(db)
    assert audit.ok, audit.drift


async def scrape(api: Any) -> str:
    """GET /metrics with the test scrape token."""
    resp = await api.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert resp.status == 200, resp.text
    return resp.text


def sample(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of a metric whose labels include `labels`, in Prometheus text (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if not (line.startswith(name + "{") or line.startswith(name + " ")):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.rsplit(" ", 1)[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def rustore_requests(env: Any, where: Callable[[str], bool] = lambda endpoint: True) -> int:
    """How many requests the emulated RuStore received (optionally only some endpoints)."""
    return sum(count for endpoint, count in env.emulator.stats.items() if where(endpoint))
