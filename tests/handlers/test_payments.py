"""One-time purchases end to end against the RuStore emulator: orders, verify, points packs, history."""

from __future__ import annotations

import asyncio

import pytest

from documents import wallet
from documents.accounts import parse_id
from jobs import find_job
from jobs.runner import run_job
from tests.handlers.test_conventions import assert_error_shape
from tests.support.barrier import Barrier, HookedClient


@pytest.fixture(params=["minimal", "rich"])
def record_shape(request) -> str:
    """Every purchase test runs against RuStore's published record and the emulator's richer one."""
    return request.param


def verify_body(sdk: dict, **overrides) -> dict:
    """The body the app sends after the Pay SDK returned `sdk`."""
    body = {"invoiceId": sdk["invoiceId"], "purchaseId": sdk["purchaseId"], "productId": sdk["productId"],
            "orderId": sdk["orderId"], "sandbox": sdk["sandbox"]}
    return {**body, **overrides}


async def balance_of(env, user) -> int:
    return (await env.api.get("/api/points/balance", token=user["accessToken"])).json["balance"]


async def assert_ledger_clean(env) -> None:
    audit = await wallet.verify_ledger(env.service.ctx.db)
    assert audit.ok, audit.drift


async def test_one_step_points_pack_is_credited_once(emulated):
    env = await emulated()
    user = await env.api.register()
    sdk = env.buy("points_100", user=user)
    first = await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])
    assert first.status == 200, first.text
    assert first.json["status"] == "credited" and first.json["balance"] == 100
    assert first.json["purchase"] == {
        "invoiceId": sdk["invoiceId"], "purchaseId": sdk["purchaseId"], "productId": "points_100",
        "status": "confirmed", "pointsGranted": 100, "creditedBy": "verify", "sandbox": False,
        "createdAt": first.json["purchase"]["createdAt"]}
    assert (first.json["pointsGranted"], first.json["creditedBy"]) == (100, "verify")
    again = await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])
    assert again.status == 200 and again.json["status"] == "already_credited" and again.json["balance"] == 100
    assert (again.json["pointsGranted"], again.json["creditedBy"]) == (100, "verify")
    history = (await env.api.get("/api/points/history", token=user["accessToken"])).json["items"]
    assert [(i["type"], i["amount"]) for i in history] == [("buy", 100)]
    await assert_ledger_clean(env)


async def test_points_buy_endpoint_credits_packs_and_refuses_other_products(emulated):
    env = await emulated()
    user = await env.api.register()
    sdk = env.buy("points_500", user=user)
    resp = await env.api.post("/api/points/buy", verify_body(sdk), token=user["accessToken"])
    assert resp.status == 200 and resp.json["balance"] == 500
    sub = env.subscribe("premium_monthly")
    refused = await env.api.post("/api/points/buy", verify_body(sub, productId="premium_monthly"),
                                 token=user["accessToken"])
    assert_error_shape(refused, 400, "not_a_points_product")


async def test_two_step_purchase_is_credited_then_confirmed_at_rustore(emulated):
    env = await emulated(webhooks=False)  # verify alone: a notification processed first would answer already_credited
    user = await env.api.register()
    sdk = env.buy("points_100", user=user, purchase_type="TWO_STEP")
    assert env.emulator.store.invoice(int(sdk["invoiceId"])).status == "PAID"
    resp = await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])
    assert resp.status == 200 and resp.json["status"] == "credited"
    assert resp.json["purchase"]["status"] == "confirmed"
    assert env.emulator.store.invoice(int(sdk["invoiceId"])).status == "CONFIRMED"
    assert await balance_of(env, user) == 100


async def test_two_step_confirmation_failure_is_retried_by_the_job_before_the_hold_expires(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    sdk = env.buy("points_100", user=user, purchase_type="TWO_STEP")
    env.emulator.set_fault("purchase_confirm", "error", status=503)
    resp = await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])
    assert resp.status == 200 and resp.json["purchase"]["status"] == "paid"  # points are safe, confirm pending
    assert env.emulator.store.invoice(int(sdk["invoiceId"])).status == "PAID"
    env.emulator.clear_faults()
    await env.advance(5 * 60)  # the job's retry is due within minutes; RuStore holds for 6 hours
    outcome = await run_job(env.service.ctx, find_job("purchase-reconcile"))
    assert outcome.outcome == "ok"
    assert env.emulator.store.invoice(int(sdk["invoiceId"])).status == "CONFIRMED"
    assert await balance_of(env, user) == 100
    await assert_ledger_clean(env)


async def test_concurrent_verifies_and_the_job_credit_a_purchase_exactly_once(emulated):
    mongo = HookedClient()
    env = await emulated(mongo=mongo, webhooks=False)
    user = await env.api.register()
    sdk = env.buy("points_100", user=user)
    # Two crediting callers meet right before the ledger's update (see tests/support/barrier.py).
    mongo.hook = barrier = Barrier(2)
    results = await asyncio.gather(
        *(env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"]) for _ in range(6)),
        run_job(env.service.ctx, find_job("purchase-reconcile")),
    )
    assert barrier.met
    statuses = [r.json["status"] for r in results[:6]]
    assert statuses.count("credited") == 1 and statuses.count("already_credited") == 5
    assert await balance_of(env, user) == 100
    await assert_ledger_clean(env)


async def test_another_users_purchase_is_refused_with_409(emulated):
    env = await emulated()
    owner, intruder = await env.api.register(), await env.api.register()
    ordered = (await env.api.post("/api/payments/orders", {"productId": "points_100"}, token=owner["accessToken"])).json
    sdk = env.buy("points_100", order_id=ordered["orderId"], developer_payload=ordered["developerPayload"],
                  app_user_id=ordered["appUserId"])
    stolen = await env.api.post("/api/payments/verify", verify_body(sdk), token=intruder["accessToken"])
    assert_error_shape(stolen, 409, "purchase_belongs_to_another_user")
    assert await balance_of(env, intruder) == 0
    mine = await env.api.post("/api/payments/verify", verify_body(sdk), token=owner["accessToken"])
    assert mine.status == 200 and mine.json["balance"] == 100
    used = await env.service.ctx.db["orders"].find_one({"_id": ordered["orderId"]})
    assert used["used_by_invoice"] == str(sdk["invoiceId"])  # the order records the purchase that used it
    # Without an order, possession of the purchaseId RuStore reported (its notification) proves it.
    loose = env.buy("points_100")
    await env.settle()
    assert (await env.api.post("/api/payments/verify", verify_body(loose), token=owner["accessToken"])).status == 200
    assert await balance_of(env, owner) == 200
    again = await env.api.post("/api/payments/verify", verify_body(loose), token=intruder["accessToken"])
    assert_error_shape(again, 409, "purchase_belongs_to_another_user")
    await assert_ledger_clean(env)


async def test_orders_give_the_app_what_the_pay_sdk_needs(emulated):
    env = await emulated()
    user = await env.api.register()
    resp = await env.api.post("/api/payments/orders", {"productId": "points_500"}, token=user["accessToken"])
    assert resp.status == 201
    assert set(resp.json) == {"orderId", "developerPayload", "productId", "appUserId"}
    assert resp.json["appUserId"] == user["userId"] and resp.json["productId"] == "points_500"
    sub = await env.api.post("/api/payments/orders", {"productId": "premium_monthly"}, token=user["accessToken"])
    assert_error_shape(sub, 400, "not_a_one_time_product")
    unknown = await env.api.post("/api/payments/orders", {"productId": "nope"}, token=user["accessToken"])
    assert_error_shape(unknown, 400, "unknown_product")


async def test_required_orders_refuse_purchases_without_one(emulated):
    env = await emulated(require_orders=True)
    user = await env.api.register()
    resp = await env.api.post("/api/payments/verify", verify_body(env.buy("points_100")), token=user["accessToken"])
    assert_error_shape(resp, 400, "order_required")
    order = (await env.api.post("/api/payments/orders", {"productId": "points_100"}, token=user["accessToken"])).json
    sdk = env.buy("points_100", order_id=order["orderId"], developer_payload=order["developerPayload"])
    assert (await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])).status == 200
    assert await balance_of(env, user) == 100


async def test_a_purchase_of_another_product_than_its_order_is_refused_and_credits_nothing(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    order = (await env.api.post("/api/payments/orders", {"productId": "points_100"}, token=user["accessToken"])).json
    sdk = env.buy("points_500", order_id=order["orderId"], developer_payload=order["developerPayload"])
    resp = await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])
    assert_error_shape(resp, 400, "product_mismatch")  # RuStore's record and our order disagree on the product
    assert await balance_of(env, user) == 0


async def test_client_product_id_is_never_the_source_of_the_grant(emulated):
    env = await emulated(webhooks=False)  # a notification would credit it rightly, from RuStore's record
    user = await env.api.register()
    sdk = env.buy("points_100", user=user)
    resp = await env.api.post("/api/payments/verify", verify_body(sdk, productId="points_500"), token=user["accessToken"])
    assert_error_shape(resp, 400, "product_mismatch")
    assert await balance_of(env, user) == 0
    wrong_purchase = verify_body(sdk, purchaseId="00000000-0000-0000-0000-000000000000")
    assert_error_shape(await env.api.post("/api/payments/verify", wrong_purchase, token=user["accessToken"]),
                       400, "purchase_mismatch")


async def test_unknown_invoice_and_unpaid_purchases_are_refused(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    missing = verify_body(env.buy("points_100", user=user), invoiceId="999999")
    assert_error_shape(await env.api.post("/api/payments/verify", missing, token=user["accessToken"]),
                       400, "purchase_not_found")
    for outcome in ("cancelled", "rejected", "expired"):
        sdk = env.buy("points_100", user=user, outcome=outcome)
        resp = await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])
        assert_error_shape(resp, 400, "purchase_not_paid")
    assert await balance_of(env, user) == 0


async def test_pending_purchase_answers_202_and_the_job_credits_it_once_paid(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    sdk = env.buy("points_100", user=user, outcome="pending")
    resp = await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])
    assert resp.status == 202 and resp.json["status"] == "pending"
    env.emulator.invoice_action(int(sdk["invoiceId"]), "pay")
    await env.advance(120)
    await run_job(env.service.ctx, find_job("purchase-reconcile"))
    assert await balance_of(env, user) == 100
    await assert_ledger_clean(env)


async def test_rustore_down_during_verify_is_503_and_the_job_credits_later(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    sdk = env.buy("points_100", user=user)
    env.emulator.set_fault("*", "error", status=500)
    resp = await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])
    assert_error_shape(resp, 503, "rustore_unavailable")
    assert resp.json["details"] == {"retryable": True}
    assert await balance_of(env, user) == 0
    env.emulator.clear_faults()
    await env.advance(60)
    outcome = await run_job(env.service.ctx, find_job("purchase-reconcile"))
    assert outcome.summary["checked"] >= 1
    assert await balance_of(env, user) == 100
    again = await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])
    assert again.json["status"] == "already_credited"
    await assert_ledger_clean(env)


async def test_refund_claws_back_down_to_zero_and_records_the_shortfall(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    sdk = env.buy("points_100", user=user)
    await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])
    spend = await env.api.post("/api/points/spend", {"amount": 70}, token=user["accessToken"],
                               headers={"Idempotency-Key": "spend-before-refund"})
    assert spend.status == 200 and spend.json["balance"] == 30
    env.emulator.invoice_action(int(sdk["invoiceId"]), "refund")
    again = await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])
    assert_error_shape(again, 400, "purchase_refunded")
    assert await balance_of(env, user) == 0
    entry = (await env.api.get("/api/points/history", token=user["accessToken"])).json["items"][0]
    assert (entry["type"], entry["amount"]) == ("clawback", -30)
    stored = await wallet.find_entry(env.service.ctx.db, parse_id(user["userId"]),
                                     f"purchase-clawback:{sdk['invoiceId']}")
    assert stored.meta["shortfall"] == 70 and stored.meta["requested"] == 100
    await assert_ledger_clean(env)


async def test_refund_can_push_the_balance_negative_when_configured(emulated):
    env = await emulated(clawback_allow_negative=True, webhooks=False)
    user = await env.api.register()
    sdk = env.buy("points_100", user=user)
    await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])
    await env.api.post("/api/points/spend", {"amount": 70}, token=user["accessToken"], headers={"Idempotency-Key": "k1"})
    env.emulator.invoice_action(int(sdk["invoiceId"]), "refund")
    # No webhook handler involved: the refund sweep finds it in RuStore's invoice list for the day.
    outcome = await run_job(env.service.ctx, find_job("refund-sweep"))
    assert outcome.summary["revoked"] == 1
    assert await balance_of(env, user) == -70
    again = await run_job(env.service.ctx, find_job("refund-sweep"))
    assert again.summary["revoked"] == 0
    await assert_ledger_clean(env)


async def test_sandbox_purchases_follow_the_deployment_setting(emulated):
    off = await emulated(rustore_allow_sandbox=False)
    user = await off.api.register()
    refused = await off.api.post("/api/payments/verify", verify_body(off.buy("points_100", user=user, sandbox=True)),
                                 token=user["accessToken"])
    assert_error_shape(refused, 400, "sandbox_not_allowed")
    assert await balance_of(off, user) == 0
    on = await emulated(rustore_allow_sandbox=True)
    user = await on.api.register()
    resp = await on.api.post("/api/payments/verify", verify_body(on.buy("points_100", user=user, sandbox=True)),
                             token=user["accessToken"])
    assert resp.status == 200 and resp.json["purchase"]["sandbox"] is True
    history = (await on.api.get("/api/payments/history", token=user["accessToken"])).json["items"]
    assert history[0]["sandbox"] is True


async def test_purchase_history_lists_only_the_callers_purchases_newest_first(emulated):
    env = await emulated()
    user, other = await env.api.register(), await env.api.register()
    invoices = []
    for product in ("points_100", "points_500", "points_100"):
        sdk = env.buy(product, user=user)
        invoices.append(sdk["invoiceId"])
        await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])
    await env.api.post("/api/payments/verify", verify_body(env.buy("points_100", user=other)), token=other["accessToken"])
    page1 = (await env.api.get("/api/payments/history?limit=2", token=user["accessToken"])).json
    assert [i["invoiceId"] for i in page1["items"]] == invoices[::-1][:2]
    page2 = (await env.api.get(f"/api/payments/history?limit=2&cursor={page1['nextCursor']}",
                               token=user["accessToken"])).json
    assert [i["invoiceId"] for i in page2["items"]] == [invoices[0]] and page2["nextCursor"] is None
    bad = await env.api.get("/api/payments/history?cursor=%21%21", token=user["accessToken"])
    assert_error_shape(bad, 400, "validation_failed")


NO_ADS = {"id": "no_ads", "type": "non_consumable", "title": "No ads", "price": 19900}


async def test_non_consumable_is_owned_on_the_profile_and_removed_on_refund(emulated):
    from core.settings import load_settings

    products = [*load_settings().extra["products"], NO_ADS]
    env = await emulated(extra={"products": products}, webhooks=False)
    user = await env.api.register()
    sdk = env.buy("no_ads", user=user)
    resp = await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])
    assert resp.status == 200 and resp.json["status"] == "credited"
    assert resp.json["purchase"]["pointsGranted"] == 0 and resp.json["balance"] == 0
    profile = (await env.api.get("/api/user/profile", token=user["accessToken"])).json
    assert [(o["productId"], o["invoiceId"]) for o in profile["ownedProducts"]] == [("no_ads", sdk["invoiceId"])]
    again = await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])
    assert again.json["status"] == "already_credited"
    assert len((await env.api.get("/api/user/profile", token=user["accessToken"])).json["ownedProducts"]) == 1
    env.emulator.invoice_action(int(sdk["invoiceId"]), "refund")
    await run_job(env.service.ctx, find_job("refund-sweep"))
    assert (await env.api.get("/api/user/profile", token=user["accessToken"])).json["ownedProducts"] == []


async def test_verify_twice_webhook_and_job_racing_credit_one_purchase_once(emulated):
    """The app verifies twice at once while RuStore's notification and the reconcile job handle the same purchase."""
    mongo = HookedClient()
    env = await emulated(mongo=mongo)  # webhooks on: the emulator delivers the purchase's notifications to our server
    user = await env.api.register()
    order = (await env.api.post("/api/payments/orders", {"productId": "points_100"}, token=user["accessToken"])).json
    sdk = env.buy("points_100", order_id=order["orderId"], developer_payload=order["developerPayload"],
                  app_user_id=order["appUserId"])
    # The job's first look at a new purchase is due a minute after it is recorded.  The clock moves
    # without settling: the notifications must still be undelivered when the four paths start.
    env.emulator.advance_clock(60)
    mongo.hook = barrier = Barrier(2)  # two of the four paths reach the ledger's credit at once
    results = await asyncio.gather(
        env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"]),
        env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"]),
        env.emulator.drain_notifications(),
        run_job(env.service.ctx, find_job("purchase-reconcile")),
    )
    await env.settle()
    await run_job(env.service.ctx, find_job("webhook-retry"))
    assert barrier.met
    assert {r.json["status"] for r in results[:2]} <= {"credited", "already_credited"}
    processed = await env.service.ctx.db["webhook_events"].count_documents({"status": "processed"})
    assert processed >= 1  # the notification path really ran
    assert await balance_of(env, user) == 100
    buys = [i for i in (await env.api.get("/api/points/history", token=user["accessToken"])).json["items"]
            if i["type"] == "buy"]
    assert len(buys) == 1
    await assert_ledger_clean(env)
