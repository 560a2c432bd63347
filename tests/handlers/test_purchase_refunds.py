"""Refunds always come back: whatever the catalog says today, however old the invoice, whatever raced or died."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import timedelta
from typing import Any

import pytest
from mongomock_motor import AsyncMongoMockClient

from core.admin import run_admin, shortfalls, unowned
from core.emulated import attach
from documents import wallet
from documents.accounts import parse_id
from documents.purchases import find_purchase
from documents.wallet import TRANSACTIONS
from jobs import find_job
from jobs.runner import run_job
from server import build_parser
from tests.handlers import test_subscriptions as subscriptions
from tests.handlers.test_metrics import sample
from tests.handlers.test_payments import NO_ADS, balance_of, verify_body
from tests.support.yielding import YieldingDatabase

TOKEN = "refund-tests-scrape-token-0123456789"
SECRET = "refund-tests-jwt-secret-shared-by-restarts-0123456789"  # tokens survive the restart
POINTS_100 = {"id": "points_100", "type": "consumable", "points": 100, "title": "100 points"}


async def restarted(env, start_server, store, webhooks: bool = False, **changes: Any):
    """Our server started again on the same store and RuStore, with other settings (e.g. another catalog)."""
    settings = dataclasses.replace(env.service.ctx.settings, **changes)
    service, api = await start_server(mongo=store, settings=settings, clock=env.clock.now)
    if webhooks:
        attach(env.app, api.base_url)
    return service, api


async def settle(env, service) -> None:
    """Wait until the emulator delivered its notifications and `service` finished applying them."""
    await env.emulator.drain_notifications(10)
    for _ in range(1000):
        if not service.ctx.background:
            return
        await asyncio.wait(set(service.ctx.background), timeout=0.01)
    raise TimeoutError("background processing did not finish")


async def entries_of(db, user) -> list[tuple[str, int]]:
    stored = await db[TRANSACTIONS].find({"user_id": parse_id(user["userId"])}).sort("seq", 1).to_list(100)
    return [(e["type"], e["amount"]) for e in stored]


def catalog_without(settings, product_id: str, *replacements: dict) -> dict:
    return {**settings.extra, "products": [*(p for p in settings.extra["products"] if p["id"] != product_id),
                                           *replacements]}


def env_products() -> list[dict]:
    from core.settings import load_settings

    return list(load_settings().extra["products"])


CHANGES = {
    "removed": lambda s: {"extra": catalog_without(s, "points_100")},
    "now_a_subscription": lambda s: {"extra": catalog_without(s, "points_100", {
        "id": "points_100", "type": "subscription", "plan": "monthly", "period_days": 30, "points_per_period": 1})},
    "now_non_consumable": lambda s: {"extra": catalog_without(s, "points_100", {**NO_ADS, "id": "points_100"})},
    "sandbox_switched_off": lambda s: {"rustore_allow_sandbox": False},
}


@pytest.mark.parametrize("path", ["webhook", "refund-sweep", "verify"])
@pytest.mark.parametrize("change", sorted(CHANGES))
async def test_refund_is_clawed_back_after_a_restart_with_another_catalog(emulated, start_server, change, path):
    store = AsyncMongoMockClient(tz_aware=True)
    env = await emulated(mongo=store, webhooks=False, rustore_allow_sandbox=True, jwt_secret=SECRET)
    user = await env.api.register()
    sdk = env.buy("points_100", user=user, sandbox=change == "sandbox_switched_off")
    assert (await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])).status == 200
    granted = (await find_purchase(env.service.ctx.db, sdk["invoiceId"], sdk["sandbox"]))["granted"]
    assert (granted["points"], granted["product_type"], granted["owned"]) == (100, "consumable", False)

    service, api = await restarted(env, start_server, store, webhooks=path == "webhook",
                                   **CHANGES[change](env.service.ctx.settings))
    env.emulator.invoice_action(int(sdk["invoiceId"]), "refund")
    if path == "webhook":
        await settle(env, service)
    elif path == "refund-sweep":
        assert (await run_job(service.ctx, find_job("refund-sweep"))).summary["revoked"] == 1
    else:
        again = await api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])
        assert again.status == 400 and again.json["reason"] == "purchase_refunded", again.text
    assert await balance_of(env, user) == 0
    assert (await api.get("/api/points/balance", token=user["accessToken"])).json["balance"] == 0
    assert await entries_of(service.ctx.db, user) == [("buy", 100), ("clawback", -100)]
    assert (await find_purchase(service.ctx.db, sdk["invoiceId"], sdk["sandbox"]))["state"] == "refunded"


async def test_non_consumable_refund_is_taken_back_after_the_product_left_the_catalog(emulated, start_server):
    store = AsyncMongoMockClient(tz_aware=True)
    products = [*env_products(), NO_ADS]
    env = await emulated(mongo=store, webhooks=False, extra={"products": products}, jwt_secret=SECRET)
    user = await env.api.register()
    sdk = env.buy("no_ads", user=user)
    assert (await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])).status == 200
    service, api = await restarted(env, start_server, store,
                                   extra=catalog_without(env.service.ctx.settings, "no_ads"))
    env.emulator.invoice_action(int(sdk["invoiceId"]), "refund")
    await run_job(service.ctx, find_job("refund-sweep"))
    assert (await api.get("/api/user/profile", token=user["accessToken"])).json["ownedProducts"] == []


async def test_a_purchase_credited_before_the_grant_record_existed_is_still_clawed_back(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    sdk = env.buy("points_100", user=user)
    await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])
    db = env.service.ctx.db
    # A document written by the previous release: no `granted` record; the ledger's credit entry is the fallback.
    await db["purchases"].update_one({"invoice_id": sdk["invoiceId"]}, {"$unset": {"granted": ""}})
    env.emulator.invoice_action(int(sdk["invoiceId"]), "refund")
    assert (await run_job(env.service.ctx, find_job("refund-sweep"))).summary["revoked"] == 1
    assert await entries_of(db, user) == [("buy", 100), ("clawback", -100)]


async def test_refund_of_an_invoice_older_than_the_sweep_window_is_found_by_the_slow_pass(emulated):
    env = await emulated(webhooks=False, refund_slow_pass_per_run=2)
    user = await env.api.register()
    bought = [env.buy("points_100", user=user) for _ in range(3)]
    for sdk in bought:
        await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])
    await env.advance(timedelta(days=30))  # far outside REFUND_SWEEP_DAYS (14): RuStore's daily lists miss it
    env.emulator.invoice_action(int(bought[2]["invoiceId"]), "refund")
    calls = env.emulator.stats["payment_v2"]

    first = (await run_job(env.service.ctx, find_job("refund-sweep"))).summary
    assert (first["listed"], first["old_checked"], first["old_revoked"]) == (0, 2, 0)  # the two checked least recently
    assert env.emulator.stats["payment_v2"] - calls == 2  # one P3 call per purchase, at most PER_RUN a run
    second = (await run_job(env.service.ctx, find_job("refund-sweep"))).summary
    assert (second["old_checked"], second["old_revoked"]) == (2, 1)
    assert await balance_of(env, user) == 200
    assert (await find_purchase(env.service.ctx.db, bought[2]["invoiceId"], False))["state"] == "refunded"
    third = (await run_job(env.service.ctx, find_job("refund-sweep"))).summary
    assert (third["old_checked"], third["old_revoked"]) == (2, 0)  # the refunded one is final: no longer asked
    assert await entries_of(env.service.ctx.db, user) == [("buy", 100)] * 3 + [("clawback", -100)]


class ParkingClient:
    """A mongomock-motor client whose database runs `hook(collection, method)` before every call."""

    def __init__(self, hook) -> None:
        self._client = AsyncMongoMockClient(tz_aware=True)
        self._hook = hook

    def __getitem__(self, name: str) -> YieldingDatabase:
        return YieldingDatabase(self._client[name], self._hook)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class Crash(Exception):
    """The granting process dies here."""


async def test_a_grant_racing_the_refund_and_dying_before_it_rereads_the_state_is_taken_back(emulated):
    parked, release = asyncio.Event(), asyncio.Event()
    plan: dict[str, Any] = {"park": None, "crash": None}

    def hook(collection: str, method: str):
        if plan["park"] == (collection, method):
            plan["park"] = None
            parked.set()
            return release.wait()
        if plan["crash"] == (collection, method):
            plan["crash"] = None
            raise Crash("granting process killed after its credit")
        return None

    env = await emulated(mongo=ParkingClient(hook), webhooks=False)
    user = await env.api.register()
    sdk = env.buy("points_100", user=user)
    # The verify parks right before its wallet update: the purchase is bound, nothing credited yet.
    plan["park"] = ("users", "find_one_and_update")
    verifying = asyncio.create_task(env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"]))
    await asyncio.wait_for(parked.wait(), 10)
    env.emulator.invoice_action(int(sdk["invoiceId"]), "refund")
    await env.advance(timedelta(minutes=2))
    job = (await run_job(env.service.ctx, find_job("purchase-reconcile"))).summary
    assert job["checked"] == 1
    doc = await find_purchase(env.service.ctx.db, sdk["invoiceId"], False)
    assert doc["state"] == "refunded" and doc["next_check_at"] is not None  # found no credit: one more look is due
    # The grant now writes its credit and dies before it could read the refunded state.
    plan["crash"] = ("purchases", "update_one")
    release.set()
    assert (await verifying).status == 500
    assert plan == {"park": None, "crash": None}  # both the park and the crash happened
    assert await balance_of(env, user) == 100

    await env.advance(timedelta(minutes=11))
    assert (await run_job(env.service.ctx, find_job("purchase-reconcile"))).summary["revocations"] == 1
    assert await balance_of(env, user) == 0
    await env.advance(timedelta(hours=1))
    later = (await run_job(env.service.ctx, find_job("purchase-reconcile"))).summary
    assert later.get("revocations", 0) == 0 and later["checked"] == 0  # the one extra look was the last
    assert await entries_of(env.service.ctx.db, user) == [("buy", 100), ("clawback", -100)]
    audit = await wallet.verify_ledger(env.service.ctx.db)
    assert audit.ok, audit.drift


async def test_shortfalls_are_counted_in_a_metric_and_listed_by_the_admin_command(emulated, capsys):
    env = await emulated(webhooks=False, metrics_token=TOKEN)
    user = await env.api.register()
    sdk = env.buy("points_100", user=user)
    await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])
    await env.api.post("/api/points/spend", {"amount": 70}, token=user["accessToken"], headers={"Idempotency-Key": "s1"})
    scrape = {"headers": {"Authorization": f"Bearer {TOKEN}"}}
    before = (await env.api.get("/metrics", **scrape)).text
    env.emulator.invoice_action(int(sdk["invoiceId"]), "refund")
    await run_job(env.service.ctx, find_job("refund-sweep"))
    await run_job(env.service.ctx, find_job("refund-sweep"))  # seen again: counted once
    after = (await env.api.get("/metrics", **scrape)).text
    for name, delta in (("clawback_shortfall_total", 1), ("clawback_shortfall_points_total", 70)):
        assert sample(after, name, kind="purchase") - sample(before, name, kind="purchase") == delta

    more = env.buy("points_100", user=user)  # bought again since: the list shows the account's balance now
    assert (await env.api.post("/api/payments/verify", verify_body(more), token=user["accessToken"])).status == 200
    rows = await shortfalls(env.service.ctx.db, 50)
    assert [(r["email"], r["reference"], r["requested"], r["taken"], r["shortfall"], r["balance"]) for r in rows] == [
        (user["email"], f"invoice:{sdk['invoiceId']}", 100, 30, 70, 100)]
    assert await run_admin(env.service.ctx, build_parser().parse_args(["shortfalls"])) == 0
    out = capsys.readouterr().out
    assert user["email"] in out and f"invoice:{sdk['invoiceId']}" in out and "70" in out
    assert await run_admin(env.service.ctx, build_parser().parse_args(["shortfalls", "--json"])) == 0
    assert json.loads(capsys.readouterr().out)[0]["shortfall"] == 70


async def test_unowned_purchase_stops_polling_rustore_after_the_cap_and_is_listed(emulated, capsys):
    env = await emulated(webhooks=False, require_orders=True, unowned_purchase_max_checks=3, metrics_token=TOKEN)
    user = await env.api.register()
    sdk = env.buy("points_100")  # no server order: with REQUIRE_ORDERS no account can be bound to it
    env.emulator.set_fault("payment_v2", "error", status=503)
    claimed = await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])
    assert claimed.status == 503
    env.emulator.clear_faults()
    calls = env.emulator.stats["payment_v2"]
    scrape = {"headers": {"Authorization": f"Bearer {TOKEN}"}}
    before = sample((await env.api.get("/metrics", **scrape)).text, "unowned_purchases_stopped_total")
    stopped = []
    for _ in range(6):
        await env.advance(timedelta(minutes=31))
        stopped.append((await run_job(env.service.ctx, find_job("purchase-reconcile"))).summary.get("unowned_stopped", 0))
    assert stopped == [0, 0, 1, 0, 0, 0]
    assert env.emulator.stats["payment_v2"] - calls == 3  # then RuStore is no longer asked
    assert await balance_of(env, user) == 0
    rows = await unowned(env.service.ctx.db, 50)
    assert [(r["invoice_id"], r["checks"], r["claimed_by"]) for r in rows] == [(sdk["invoiceId"], 3, user["userId"])]
    assert await run_admin(env.service.ctx, build_parser().parse_args(["unowned"])) == 0
    assert sdk["invoiceId"] in capsys.readouterr().out
    after = sample((await env.api.get("/metrics", **scrape)).text, "unowned_purchases_stopped_total")
    assert after - before == 1
    # The buyer can still verify it later (here: with REQUIRE_ORDERS it stays refused, and nothing is credited).
    late = await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])
    assert late.status == 400 and late.json["reason"] == "order_required"
    assert await balance_of(env, user) == 0


async def test_subscription_charge_shortfalls_are_counted_and_listed_too(emulated):
    env = await emulated(metrics_token=TOKEN)
    user = await env.api.register()
    sdk = await subscriptions.subscribe(env, user)
    await env.settle()
    assert (await subscriptions.verify(env, user, sdk)).json["balance"] == 300
    await env.api.post("/api/points/spend", {"amount": 250}, token=user["accessToken"], headers={"Idempotency-Key": "s"})
    scrape = {"headers": {"Authorization": f"Bearer {TOKEN}"}}
    before = (await env.api.get("/metrics", **scrape)).text
    env.emulator.invoice_action(int(sdk["invoiceId"]), "refund")
    await env.settle()
    after = (await env.api.get("/metrics", **scrape)).text
    for name, delta in (("clawback_shortfall_total", 1), ("clawback_shortfall_points_total", 250)):
        assert sample(after, name, kind="subscription") - sample(before, name, kind="subscription") == delta
    rows = await shortfalls(env.service.ctx.db, 50)
    assert [(r["reference"], r["requested"], r["taken"], r["shortfall"]) for r in rows] == [
        (f"subscription:{sdk['purchaseId']}", 300, 50, 250)]
