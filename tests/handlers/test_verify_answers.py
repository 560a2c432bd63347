"""Verify answers are unambiguous: the wallet's current balance, what the purchase granted, and who credited it first."""

from __future__ import annotations

from datetime import timedelta

from core.settings import load_settings
from documents import wallet
from documents.purchases.effects import credit_key
from jobs import find_job
from jobs.runner import run_job
from tests.handlers.test_conventions import assert_error_shape
from tests.handlers.test_payments import NO_ADS, balance_of, verify_body
from tests.handlers.test_subscriptions import verify_body as subscription_body


async def ordered_purchase(env, user, product_id: str, **params) -> dict:
    """The documented flow: a server order, then the Pay SDK purchase carrying what the order says."""
    order = await env.api.post("/api/payments/orders", {"productId": product_id}, token=user["accessToken"])
    assert order.status == 201, order.text
    return env.buy(product_id, order_id=order.json["orderId"], developer_payload=order.json["developerPayload"],
                   app_user_id=order.json["appUserId"], **params)


async def verify(env, user, sdk: dict, path: str = "/api/payments/verify"):
    body = subscription_body(sdk) if path.startswith("/api/subscriptions") else verify_body(sdk)
    resp = await env.api.post(path, body, token=user["accessToken"])
    assert resp.status == 200, resp.text
    return resp.json


def summary(answer: dict) -> tuple:
    return answer["status"], answer["pointsGranted"], answer["creditedBy"], answer["balance"]


async def test_verify_first_then_a_later_verify_answers_the_current_balance_not_the_one_after_that_purchase(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    first = await ordered_purchase(env, user, "points_500")
    assert summary(await verify(env, user, first)) == ("credited", 500, "verify", 500)
    second = await ordered_purchase(env, user, "points_100")
    assert summary(await verify(env, user, second, "/api/points/buy")) == ("credited", 100, "verify", 600)
    # The first purchase again: what it granted and who credited it, and the wallet as it is now (600, not 500).
    again = await verify(env, user, first)
    assert summary(again) == ("already_credited", 500, "verify", 600)
    assert (again["purchase"]["pointsGranted"], again["purchase"]["creditedBy"]) == (500, "verify")
    spent = await env.api.post("/api/points/spend", {"amount": 50}, token=user["accessToken"],
                               headers={"Idempotency-Key": "spend-1"})
    assert spent.status == 200, spent.text
    assert summary(await verify(env, user, second, "/api/points/buy")) == ("already_credited", 100, "verify", 550)
    assert await balance_of(env, user) == 550


async def test_webhook_first_then_verify_says_what_the_webhook_granted(emulated):
    env = await emulated()  # RuStore's notification reaches our server before the app calls verify
    user = await env.api.register()
    sdk = await ordered_purchase(env, user, "points_100")
    await env.settle()
    assert await balance_of(env, user) == 100
    answer = await verify(env, user, sdk)
    assert summary(answer) == ("already_credited", 100, "webhook", 100)
    history = (await env.api.get("/api/payments/history", token=user["accessToken"])).json["items"]
    assert [(p["pointsGranted"], p["creditedBy"]) for p in history] == [(100, "webhook")]


async def test_job_first_then_verify_says_the_job_granted_it(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    sdk = await ordered_purchase(env, user, "points_100")
    env.emulator.set_fault("*", "error", status=500)
    resp = await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])
    assert_error_shape(resp, 503, "rustore_unavailable")
    env.emulator.clear_faults()
    await env.advance(timedelta(minutes=2))
    await run_job(env.service.ctx, find_job("purchase-reconcile"))
    assert summary(await verify(env, user, sdk)) == ("already_credited", 100, "job", 100)


async def test_pending_answer_carries_the_current_balance_and_nothing_credited(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    paid = await ordered_purchase(env, user, "points_100")
    await verify(env, user, paid)
    pending = await ordered_purchase(env, user, "points_500", outcome="pending")
    resp = await env.api.post("/api/payments/verify", verify_body(pending), token=user["accessToken"])
    assert resp.status == 202, resp.text
    assert summary(resp.json) == ("pending", 0, None, 100)


async def test_a_purchase_credited_before_credited_by_existed_falls_back_to_its_history(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    sdk = await ordered_purchase(env, user, "points_100")
    await verify(env, user, sdk)
    purchases = env.service.ctx.db["purchases"]
    await purchases.update_one({"invoice_id": sdk["invoiceId"]}, {"$unset": {"credited_by": ""}})
    assert summary(await verify(env, user, sdk)) == ("already_credited", 100, "verify", 100)


async def test_subscription_webhook_first_then_verify_names_the_webhook_and_the_current_balance(emulated):
    env = await emulated()
    user = await env.api.register()
    order = await env.api.post("/api/subscriptions/create", {"productId": "premium_monthly"}, token=user["accessToken"])
    sdk = env.subscribe("premium_monthly", order_id=order.json["orderId"],
                        developer_payload=order.json["developerPayload"], app_user_id=order.json["appUserId"])
    await env.settle()
    pack = await ordered_purchase(env, user, "points_100")
    await verify(env, user, pack)
    answer = await verify(env, user, sdk, "/api/subscriptions/verify")
    assert (answer["status"], answer["pointsGranted"], answer["creditedBy"], answer["creditedNow"], answer["balance"]) \
        == ("active", 300, "webhook", False, 400)


async def test_a_non_consumable_names_who_granted_it_and_grants_no_points(emulated):
    products = [*load_settings().extra["products"], NO_ADS]
    env = await emulated(extra={"products": products})
    user = await env.api.register()
    sdk = await ordered_purchase(env, user, "no_ads")
    await env.settle()  # the webhook records the ownership first
    assert summary(await verify(env, user, sdk)) == ("already_credited", 0, "webhook", 0)
    profile = (await env.api.get("/api/user/profile", token=user["accessToken"])).json
    assert [o["productId"] for o in profile["ownedProducts"]] == ["no_ads"]


async def test_a_credit_whose_process_died_before_recording_it_keeps_its_first_origin(emulated):
    """The webhook's process credited the wallet, then died before writing the purchase; verify finishes it."""
    env = await emulated(webhooks=False)
    user = await env.api.register()
    sdk = await ordered_purchase(env, user, "points_100")
    inv = sdk["invoiceId"]
    await wallet.credit(env.service.ctx.db, user["userId"], 100, "buy", credit_key(inv, False), reference=f"invoice:{inv}",
                        meta={"invoice_id": inv, "product_id": "points_100", "sandbox": False, "credited_by": "webhook"})
    assert summary(await verify(env, user, sdk)) == ("already_credited", 100, "webhook", 100)
    stored = await env.service.ctx.db["purchases"].find_one({"invoice_id": inv})
    assert stored["credited_by"] == "webhook"
