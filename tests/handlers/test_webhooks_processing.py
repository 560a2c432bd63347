"""What RuStore notifications do to money: every effect comes from re-querying RuStore, exactly once, never backwards."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from documents import purchases, wallet, webhooks
from documents.accounts import parse_id
from documents.purchases import effects as purchase_effects
from handlers.webhooks import INLINE_PROCESSING
from jobs import find_job
from jobs.runner import run_job
from rustore.emulator import EmulatorProduct
from tests.handlers.test_webhooks import envelope, post_webhook, recorded, replay, settle_all, stored_events


@pytest.fixture(params=["minimal", "rich"])
def record_shape(request) -> str:
    """The notification path runs against RuStore's published record and the emulator's richer one."""
    return request.param


async def balance_of(env, user) -> int:
    return (await env.api.get("/api/points/balance", token=user["accessToken"])).json["balance"]


async def purchase_of(env, sdk: dict) -> dict:
    return await purchases.find_purchase(env.service.ctx.db, sdk["invoiceId"], sdk["sandbox"])


async def assert_ledger_clean(env) -> None:
    audit = await wallet.verify_ledger(env.service.ctx.db)
    assert audit.ok, audit.drift


async def test_notifications_replayed_five_times_out_of_order_credit_once_and_never_move_back(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    sdk = await env.order_and_buy(user, "points_100")  # RuStore's record names our user
    executed, confirmed = recorded(env)
    bodies = [replay(env, confirmed), replay(env, executed)]  # newest first
    for _ in range(5):
        responses = await asyncio.gather(*(post_webhook(env, body) for body in bodies))
        assert {r.status for r in responses} == {200}
        await env.settle()
    assert await balance_of(env, user) == 100
    assert [e["status"] for e in await stored_events(env)] == ["processed", "processed"]
    # The old EXECUTED change arriving again under a new id (a late resend) is applied by re-querying: no step back.
    late = await post_webhook(env, envelope(env, executed["content"], "late-1"))
    assert late.status == 200 and late.json["status"] == "accepted"
    await env.settle()
    purchase = await purchase_of(env, sdk)
    assert purchase["state"] == "confirmed" and purchase["rustore_status"] == "CONFIRMED"
    history = (await env.api.get("/api/points/history", token=user["accessToken"])).json["items"]
    assert [(i["type"], i["amount"]) for i in history] == [("buy", 100)]
    await assert_ledger_clean(env)


async def test_pending_purchase_is_credited_by_the_webhook_without_another_client_call(emulated):
    env = await emulated()
    user = await env.api.register()
    sdk = env.buy("points_100", outcome="pending")
    verify = {"invoiceId": sdk["invoiceId"], "purchaseId": sdk["purchaseId"], "productId": sdk["productId"],
              "orderId": sdk["orderId"], "sandbox": False}
    resp = await env.api.post("/api/payments/verify", verify, token=user["accessToken"])
    assert resp.status == 202 and resp.json["status"] == "pending"
    env.emulator.invoice_action(int(sdk["invoiceId"]), "pay")  # the bank finishes later
    await settle_all(env)
    assert await balance_of(env, user) == 100
    assert (await purchase_of(env, sdk))["state"] == "confirmed"
    stored = await stored_events(env)
    assert [(e["event"]["status_new"], e["status"]) for e in stored] == [("EXECUTED", "processed"),
                                                                        ("CONFIRMED", "processed")]
    # Both re-queried RuStore, which already said CONFIRMED: whichever ran first credited, the other found it done.
    assert sorted(e["result"]["credited_now"] for e in stored) == [False, True]
    assert {(e["result"]["state"], e["result"]["owned"]) for e in stored} == {("confirmed", True)}
    await assert_ledger_clean(env)


async def test_unowned_purchase_is_recorded_by_the_webhook_and_credited_when_its_buyer_verifies(emulated):
    env = await emulated()
    user = await env.api.register()
    sdk = env.buy("points_100")  # nothing in RuStore's record says who bought it
    await settle_all(env)
    assert [e["status"] for e in await stored_events(env)] == ["processed", "processed"]
    purchase = await purchase_of(env, sdk)
    assert purchase["user_id"] is None and purchase["state"] == "pending"
    resp = await env.api.post("/api/payments/verify", {
        "invoiceId": sdk["invoiceId"], "purchaseId": sdk["purchaseId"], "productId": "points_100"},
        token=user["accessToken"])
    assert resp.status == 200 and resp.json["status"] == "credited" and resp.json["balance"] == 100
    await assert_ledger_clean(env)


async def test_refund_webhook_claws_back_down_to_zero_and_records_the_shortfall(emulated):
    env = await emulated()
    user = await env.api.register()
    sdk = await env.order_and_buy(user, "points_100")
    await settle_all(env)
    assert await balance_of(env, user) == 100
    spent = await env.api.post("/api/points/spend", {"amount": 70}, token=user["accessToken"],
                               headers={"Idempotency-Key": "spend-1"})
    assert spent.status == 200 and spent.json["balance"] == 30
    env.emulator.invoice_action(int(sdk["invoiceId"]), "refund")
    await settle_all(env)
    assert await balance_of(env, user) == 0
    assert (await purchase_of(env, sdk))["state"] == "refunded"
    clawback = await wallet.find_entry(env.service.ctx.db, parse_id(user["userId"]),
                                       purchase_effects.clawback_key(sdk["invoiceId"], False))
    assert clawback.amount == -30 and clawback.meta["shortfall"] == 70
    await assert_ledger_clean(env)


async def test_refund_webhook_can_push_the_balance_negative_when_configured(emulated):
    env = await emulated(clawback_allow_negative=True)
    user = await env.api.register()
    sdk = await env.order_and_buy(user, "points_100")
    await settle_all(env)
    await env.api.post("/api/points/spend", {"amount": 70}, token=user["accessToken"],
                       headers={"Idempotency-Key": "spend-1"})
    env.emulator.invoice_action(int(sdk["invoiceId"]), "refund")
    await settle_all(env)
    assert await balance_of(env, user) == -70
    await assert_ledger_clean(env)


async def test_two_step_paid_webhook_credits_and_confirms_the_hold_at_rustore(emulated):
    env = await emulated()
    user = await env.api.register()
    sdk = await env.order_and_buy(user, "points_100", purchase_type="TWO_STEP")
    await settle_all(env)
    assert env.emulator.store.invoice(int(sdk["invoiceId"])).status == "CONFIRMED"
    assert await balance_of(env, user) == 100
    assert (await purchase_of(env, sdk))["state"] == "confirmed"
    stored = await stored_events(env)
    assert [e["event"]["status_new"] for e in stored] == ["EXECUTED", "PAID", "CONFIRMED"]  # the last one we caused
    assert {e["status"] for e in stored} == {"processed"}
    await assert_ledger_clean(env)


async def test_rustore_down_leaves_events_failed_with_backoff_and_the_retry_job_applies_them(emulated):
    env = await emulated()
    user = await env.api.register()
    sdk = await env.order_and_buy(user, "points_100", outcome="pending")
    env.emulator.set_fault("*", "error")
    env.emulator.invoice_action(int(sdk["invoiceId"]), "pay")
    await env.settle()
    now = env.service.ctx.now()
    stored = await stored_events(env)
    # RuStore-wide (token and lookups fail alike): the attempt is given back, so an outage dead-letters nothing.
    assert [(e["status"], e["attempts"]) for e in stored] == [("failed", 0), ("failed", 0)]
    for event in stored:
        assert event["last_error"].startswith("RuStoreUnavailable")
        assert now + timedelta(seconds=44) <= event["next_attempt_at"] <= now + timedelta(seconds=76)
    assert [d["status"] for d in env.emulator.deliveries()] == [200, 200]  # RuStore got its 200 regardless
    job = find_job("webhook-retry")
    early = await run_job(env.service.ctx, job)
    assert early.summary["processed"] == 0  # backoff not over yet
    env.emulator.clear_faults()
    await env.advance(timedelta(seconds=80))
    outcome = await run_job(env.service.ctx, job)
    # The job's first successful call is also the recovery event: the outage recovery pass may take one.
    assert outcome.outcome == "ok" and outcome.summary["processed"] >= 1
    await env.service.ctx.recovery.wait_idle(10)
    assert await balance_of(env, user) == 100
    assert [e["status"] for e in await stored_events(env)] == ["processed", "processed"]
    await assert_ledger_clean(env)


async def test_product_we_do_not_sell_is_dead_lettered_at_once_with_the_reason(emulated):
    env = await emulated()
    env.emulator.add_product(env.app_id, EmulatorProduct("mystery_pack", "consumable", 4900))
    user = await env.api.register()
    env.buy("mystery_pack", app_user_id=user["userId"])
    await settle_all(env)
    stored = await stored_events(env)
    assert [(e["status"], e["attempts"]) for e in stored] == [("dead", 1), ("dead", 1)]
    assert all(e["last_error"].startswith("unknown_product:") for e in stored)
    dead = await webhooks.list_dead_events(env.service.ctx.db, 10)
    assert {e["_id"] for e in dead} == {e["_id"] for e in stored}
    assert await balance_of(env, user) == 0


async def test_sandbox_notification_is_dead_lettered_when_sandbox_is_off_without_asking_rustore(emulated):
    env = await emulated(rustore_allow_sandbox=False)
    user = await env.api.register()
    await env.order_and_buy(user, "points_100", sandbox=True)
    await settle_all(env)
    stored = await stored_events(env)
    assert {e["_id"].split(":")[0] for e in stored} == {"sandbox"}
    assert {(e["status"], e["last_error"].split(":")[0]) for e in stored} == {("dead", "sandbox_not_allowed")}
    assert env.emulator.stats["payment_v2"] == 0
    assert await balance_of(env, user) == 0


async def test_subscription_notifications_apply_rustore_state_and_grant_each_paid_period_once(emulated):
    env = await emulated()
    user = await env.api.register()
    sub = env.subscribe("premium_monthly", app_user_id=user["userId"])
    await settle_all(env)
    assert await balance_of(env, user) == 300
    await env.advance(timedelta(days=30, minutes=1))  # RuStore renews: a new invoice and a RENEWED event
    await settle_all(env)
    assert await balance_of(env, user) == 600
    stored = await stored_events(env)
    assert {e["status"] for e in stored} == {"processed"}
    kinds = [(e["event"].get("event_type") or e["event"]["status_new"]) for e in stored]
    assert kinds == ["EXECUTED", "CONFIRMED", "ACTIVATED", "EXECUTED", "CONFIRMED", "RENEWED"]
    assert {(e["result"]["kind"], e["result"]["purchase_id"], e["result"]["owned"]) for e in stored} == {
        ("subscription", sub["purchaseId"], True)}
    for note in recorded(env, "SUBSCRIPTION_EVENT") + recorded(env):
        assert (await post_webhook(env, replay(env, note))).json["status"] == "duplicate"
    await env.settle()
    profile = (await env.api.get("/api/user/profile", token=user["accessToken"])).json
    assert profile["subscription"]["status"] == "active" and profile["points"]["balance"] == 600
    await assert_ledger_clean(env)


async def test_a_burst_is_acknowledged_at_once_and_processed_a_few_at_a_time(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    for _ in range(5):
        await env.order_and_buy(user, "points_100")
    env.emulator.set_fault("payment_v2", "slow", delay_s=0.3)  # every RuStore re-query takes a while
    responses = await asyncio.gather(*(post_webhook(env, replay(env, note)) for note in recorded(env)))
    assert [r.json["status"] for r in responses] == ["accepted"] * 10
    seen = set()
    for _ in range(20):
        statuses = [e["status"] for e in await stored_events(env)]
        seen.add(statuses.count("processing"))
        await asyncio.sleep(0.02)
    assert max(seen) == INLINE_PROCESSING
    await env.settle()
    assert {e["status"] for e in await stored_events(env)} == {"processed"}
    assert await balance_of(env, user) == 500
    await assert_ledger_clean(env)
