"""Subscriptions end to end against the RuStore emulator: orders, verify, renewals, grace/hold, cancel, status, profile."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from documents import wallet
from jobs import find_job
from jobs.runner import run_job
from rustore.emulator import EmulatorProduct
from tests.handlers.test_conventions import assert_error_shape

MONTH = timedelta(days=30)
NONE = {"status": "none", "plan": None, "productId": None, "startDate": None, "endDate": None,
        "autoRenewing": False, "sandbox": False}


def verify_body(sdk: dict, **overrides) -> dict:
    """What the app sends after the Pay SDK returned `sdk` for a subscription."""
    body = {"purchaseId": sdk["purchaseId"], "productId": sdk["productId"], "orderId": sdk["orderId"],
            "sandbox": sdk["sandbox"]}
    return {**body, **overrides}


async def subscribe(env, user, product_id: str = "premium_monthly", **params) -> dict:
    """Create a server order, then subscribe through the emulated Pay SDK with what the order says."""
    order = await env.api.post("/api/subscriptions/create", {"productId": product_id}, token=user["accessToken"])
    assert order.status == 201, order.text
    return env.subscribe(product_id, order_id=order.json["orderId"], developer_payload=order.json["developerPayload"],
                         app_user_id=order.json["appUserId"], **params)


async def verify(env, user, sdk: dict, path: str = "/api/subscriptions/verify", **overrides):
    return await env.api.post(path, verify_body(sdk, **overrides), token=user["accessToken"])


async def status_of(env, user) -> dict:
    resp = await env.api.get("/api/subscriptions/status", token=user["accessToken"])
    assert resp.status == 200, resp.text
    return resp.json


async def balance_of(env, user) -> int:
    return (await env.api.get("/api/points/balance", token=user["accessToken"])).json["balance"]


async def grants_of(env, user) -> list[int]:
    items = (await env.api.get("/api/points/history", token=user["accessToken"])).json["items"]
    return [i["amount"] for i in items if i["type"] == "subscription_grant"]


async def assert_ledger_clean(env) -> None:
    audit = await wallet.verify_ledger(env.service.ctx.db)
    assert audit.ok, audit.drift


async def run_reconcile(env) -> dict:
    outcome = await run_job(env.service.ctx, find_job("subscription-reconcile"))
    assert outcome.outcome == "ok", outcome.summary
    return outcome.summary


def with_grace_and_hold(env) -> None:
    """Give premium_monthly a 3-day grace and a 5-day hold at RuStore (console settings, API.md §3.1)."""
    env.emulator.add_product(env.app_id, EmulatorProduct("premium_monthly", "subscription", 29900, period=MONTH,
                                                         grace=timedelta(days=3), hold=timedelta(days=5)))


async def test_new_user_has_status_none_and_a_null_profile_subscription(emulated):
    env = await emulated()
    user = await env.api.register()
    assert await status_of(env, user) == NONE
    profile = await env.api.get("/api/user/profile", token=user["accessToken"])
    assert profile.json["subscription"] is None


async def test_create_answers_what_the_pay_sdk_needs_and_refuses_other_products(emulated):
    env = await emulated()
    user = await env.api.register()
    resp = await env.api.post("/api/subscriptions/create", {"productId": "premium_yearly"}, token=user["accessToken"])
    assert resp.status == 201
    assert resp.json == {"orderId": resp.json["orderId"], "developerPayload": "rsb1:" + resp.json["orderId"],
                         "productId": "premium_yearly", "appUserId": user["userId"]}
    for product_id in ("points_100", "no_such_product"):
        refused = await env.api.post("/api/subscriptions/create", {"productId": product_id}, token=user["accessToken"])
        assert_error_shape(refused, 400, "not_a_subscription_product")


async def test_lifecycle_grants_each_paid_period_once_and_a_cancelled_one_expires_at_its_end_without_events(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    sdk = await subscribe(env, user)
    first = await verify(env, user, sdk)
    assert first.status == 200, first.text
    record = env.emulator.store.subscription(sdk["purchaseId"])
    assert first.json == {"status": "active", "plan": "monthly", "productId": "premium_monthly",
                          "startDate": first.json["startDate"], "endDate": first.json["endDate"],
                          "autoRenewing": True, "sandbox": False, "pointsGranted": 300, "creditedBy": "verify",
                          "creditedNow": True, "balance": 300}
    assert record.acknowledged  # S7 reached RuStore
    again = await verify(env, user, sdk)
    # Again: the same period, what it granted and who credited it; nothing new (creditedNow false).
    assert (again.json["pointsGranted"], again.json["creditedBy"], again.json["creditedNow"], again.json["balance"]) \
        == (300, "verify", False, 300)

    await env.advance(MONTH + timedelta(hours=1))  # RuStore charges the second period
    assert record.charges == 2
    responses = await asyncio.gather(verify(env, user, sdk), run_reconcile(env), verify(env, user, sdk))
    assert responses[0].status == responses[2].status == 200
    assert await balance_of(env, user) == 600 and await grants_of(env, user) == [300, 300]
    renewed = await status_of(env, user)
    assert renewed["status"] == "active" and renewed["endDate"] > first.json["endDate"]

    cancelled = await env.api.post("/api/subscriptions/cancel", {}, token=user["accessToken"])
    assert cancelled.status == 200, cancelled.text
    assert cancelled.json == {**renewed, "status": "cancelled", "autoRenewing": False}
    assert record.auto_renewing is False and record.cancel_reason == 3  # developer cancel (S8)
    await env.advance(MONTH - timedelta(hours=2))
    assert (await status_of(env, user))["status"] == "cancelled"
    await env.advance(timedelta(hours=2))  # past the end: no webhook, no job, no verify
    assert await status_of(env, user) == {**cancelled.json, "status": "expired"}
    profile = await env.api.get("/api/user/profile", token=user["accessToken"])
    assert profile.json["subscription"] == {**cancelled.json, "status": "expired"}
    assert await balance_of(env, user) == 600
    await assert_ledger_clean(env)


async def test_renewal_is_granted_once_when_webhooks_verify_status_and_the_job_all_see_it(emulated):
    env = await emulated()  # webhooks on: RuStore's notifications run the same path in the background
    user = await env.api.register()
    sdk = await subscribe(env, user)
    await env.settle()
    assert (await verify(env, user, sdk)).json["balance"] == 300
    await env.advance(MONTH + timedelta(minutes=5))
    await asyncio.gather(status_of(env, user), verify(env, user, sdk), run_reconcile(env), env.settle())
    assert (await status_of(env, user))["status"] == "active"
    assert await balance_of(env, user) == 600 and await grants_of(env, user) == [300, 300]
    await assert_ledger_clean(env)


async def test_grace_and_hold_grant_nothing_until_a_renewal_charge_succeeds(emulated):
    env = await emulated(webhooks=False)
    with_grace_and_hold(env)
    user = await env.api.register()
    sdk = await subscribe(env, user, renewal="fail")  # the 1-kopeck test card: renewals fail
    assert (await verify(env, user, sdk)).json["pointsGranted"] == 300
    await env.advance(MONTH + timedelta(hours=1))
    grace = await status_of(env, user)  # the period ended: status re-checks RuStore at once
    assert grace["status"] == "grace" and grace["autoRenewing"] is True
    assert (await verify(env, user, sdk)).json["pointsGranted"] == 0
    await env.advance(timedelta(days=3))  # grace over, still unpaid: hold removes access
    assert (await status_of(env, user))["status"] == "paused"
    assert (await run_reconcile(env))["points_granted"] == 0
    env.emulator.subscription_action(sdk["purchaseId"], "renewal-outcome", outcome="success")
    await env.advance(timedelta(days=1))  # RuStore's daily retry in hold succeeds: a new paid period starts
    assert (await run_reconcile(env))["points_granted"] == 300
    assert (await status_of(env, user))["status"] == "active"
    assert (await run_reconcile(env))["points_granted"] == 0
    assert await balance_of(env, user) == 600 and await grants_of(env, user) == [300, 300]
    await assert_ledger_clean(env)


async def test_another_users_subscription_is_refused_with_409(emulated):
    env = await emulated()
    owner, other = await env.api.register(), await env.api.register()
    ordered = await subscribe(env, owner)  # appUserId and developerPayload name the owner
    assert_error_shape(await verify(env, other, ordered), 409, "purchase_belongs_to_another_user")
    unordered = env.subscribe("premium_yearly")  # no evidence: the first verifier binds it
    assert (await verify(env, owner, unordered)).status == 200
    assert_error_shape(await verify(env, other, unordered), 409, "purchase_belongs_to_another_user")
    assert await balance_of(env, other) == 0 and (await status_of(env, other))["status"] == "none"
    cancel = await env.api.post("/api/subscriptions/cancel", {"purchaseId": unordered["purchaseId"]},
                                token=other["accessToken"])
    assert_error_shape(cancel, 404, "subscription_not_found")
    assert_error_shape(await env.api.post("/api/subscriptions/cancel", {}, token=other["accessToken"]),
                       404, "subscription_not_found")
    assert env.emulator.store.subscription(unordered["purchaseId"]).auto_renewing is True
    await assert_ledger_clean(env)


async def test_sandbox_subscriptions_follow_the_deployment_setting(emulated):
    refusing = await emulated(rustore_allow_sandbox=False)
    user = await refusing.api.register()
    sdk = await subscribe(refusing, user, sandbox=True)
    assert_error_shape(await verify(refusing, user, sdk), 400, "sandbox_not_allowed")
    assert await balance_of(refusing, user) == 0

    accepting = await emulated(rustore_allow_sandbox=True)
    user = await accepting.api.register()
    sdk = await subscribe(accepting, user, sandbox=True)
    resp = await verify(accepting, user, sdk)
    assert resp.status == 200 and resp.json["sandbox"] is True and resp.json["pointsGranted"] == 300
    assert (await status_of(accepting, user))["sandbox"] is True
    await assert_ledger_clean(accepting)


async def test_legacy_billing_client_token_is_verified_and_cannot_be_cancelled_by_the_developer(emulated):
    env = await emulated()
    user = await env.api.register()
    sdk = await subscribe(env, user, sdk="billing")  # started with our order: its first invoice names the buyer
    body = {"subscriptionToken": sdk["subscriptionToken"], "productId": "premium_monthly"}
    resp = await env.api.post("/api/subscriptions/verify", body, token=user["accessToken"])
    assert resp.status == 200, resp.text
    assert (resp.json["status"], resp.json["pointsGranted"]) == ("active", 300)
    again = (await env.api.post("/api/subscriptions/verify", body, token=user["accessToken"])).json
    assert (again["pointsGranted"], again["creditedBy"], again["creditedNow"]) == (300, "verify", False)
    assert_error_shape(await env.api.post("/api/subscriptions/cancel", {}, token=user["accessToken"]),
                       409, "cancel_not_supported")
    both = {**body, "purchaseId": sdk["purchaseId"]}
    assert_error_shape(await env.api.post("/api/subscriptions/verify", both, token=user["accessToken"]),
                       400, "validation_failed")
    await assert_ledger_clean(env)


async def test_a_legacy_token_alone_proves_nothing_and_its_buyer_gets_the_subscription(emulated):
    env = await emulated(webhooks=False)
    buyer, guesser = await env.api.register(), await env.api.register()
    sdk = await subscribe(env, buyer, sdk="billing")
    body = {"subscriptionToken": sdk["subscriptionToken"], "productId": "premium_monthly"}
    # `invoiceId.userId` can be guessed: presented first by another account it binds nothing and grants nothing.
    first = await env.api.post("/api/subscriptions/verify", body, token=guesser["accessToken"])
    assert_error_shape(first, 409, "purchase_belongs_to_another_user")  # RuStore's record names the buyer
    assert await balance_of(env, guesser) == 0 and (await status_of(env, guesser))["status"] == "none"
    mine = await env.api.post("/api/subscriptions/verify", body, token=buyer["accessToken"])
    assert mine.status == 200 and (mine.json["status"], mine.json["pointsGranted"]) == ("active", 300)
    assert await balance_of(env, buyer) == 300
    await assert_ledger_clean(env)


async def test_a_legacy_subscription_started_without_an_order_waits_for_evidence_and_grants_nobody(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    sdk = env.subscribe("premium_monthly", sdk="billing")  # no order, no appUserId: RuStore names no account
    body = {"subscriptionToken": sdk["subscriptionToken"], "productId": "premium_monthly"}
    resp = await env.api.post("/api/subscriptions/verify", body, token=user["accessToken"])
    assert resp.status == 202 and resp.json == {"status": "pending", "balance": 0}
    assert (await status_of(env, user))["status"] == "none"
    await assert_ledger_clean(env)


async def test_a_legacy_token_claimed_while_rustore_was_down_binds_nobody_when_the_job_asks_later(emulated):
    env = await emulated(webhooks=False)
    guesser = await env.api.register()
    sdk = env.subscribe("premium_monthly", sdk="billing")  # someone else's, started without our order
    body = {"subscriptionToken": sdk["subscriptionToken"], "productId": "premium_monthly"}
    env.emulator.set_fault("*", "error")
    resp = await env.api.post("/api/subscriptions/verify", body, token=guesser["accessToken"])
    assert_error_shape(resp, 503, "rustore_unavailable")  # the claim is kept for the job
    env.emulator.clear_faults()
    await env.advance(timedelta(minutes=2))
    summary = await run_reconcile(env)
    assert summary["checked"] == 1 and summary["points_granted"] == 0  # RuStore answered; its record names nobody
    assert await balance_of(env, guesser) == 0 and (await status_of(env, guesser))["status"] == "none"
    await assert_ledger_clean(env)


async def test_a_legacy_first_invoice_rustore_refuses_to_show_leaves_the_subscription_pending_not_given_up(emulated):
    env = await emulated(webhooks=False)
    buyer = await env.api.register()
    sdk = await subscribe(env, buyer, sdk="billing")
    body = {"subscriptionToken": sdk["subscriptionToken"], "productId": "premium_monthly"}
    asked = env.emulator.stats.get("legacy_payment", 0)
    env.emulator.set_fault("legacy_payment", "error", status=400)  # P1 refuses the token's payment
    resp = await env.api.post("/api/subscriptions/verify", body, token=buyer["accessToken"])
    assert resp.status == 202 and resp.json == {"status": "pending", "balance": 0}  # no evidence yet, nothing lost
    assert env.emulator.stats.get("legacy_payment", 0) > asked  # the refusal was met
    env.emulator.clear_faults()
    resp = await env.api.post("/api/subscriptions/verify", body, token=buyer["accessToken"])
    assert resp.status == 200 and (resp.json["status"], resp.json["pointsGranted"]) == ("active", 300)
    await assert_ledger_clean(env)


async def test_rustore_down_during_verify_is_503_and_the_job_completes_it(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    sdk = await subscribe(env, user)
    env.emulator.set_fault("*", "error")
    assert_error_shape(await verify(env, user, sdk), 503, "rustore_unavailable")
    assert await balance_of(env, user) == 0 and (await status_of(env, user))["status"] == "none"
    env.emulator.clear_faults()
    await env.advance(timedelta(minutes=2))
    assert (await run_reconcile(env))["points_granted"] == 300
    assert (await status_of(env, user))["status"] == "active"
    assert env.emulator.store.subscription(sdk["purchaseId"]).acknowledged
    after = (await verify(env, user, sdk)).json
    assert (after["pointsGranted"], after["creditedBy"], after["creditedNow"], after["balance"]) == (300, "job", False, 300)
    await assert_ledger_clean(env)


async def test_pending_first_payment_answers_202_and_is_granted_once_paid(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    sdk = await subscribe(env, user, outcome="pending")
    resp = await verify(env, user, sdk)
    assert resp.status == 202 and resp.json == {"status": "pending", "balance": 0}
    assert (await status_of(env, user))["status"] == "none"
    env.emulator.invoice_action(int(sdk["invoiceId"]), "pay")
    await env.advance(timedelta(minutes=5))
    assert (await run_reconcile(env))["points_granted"] == 300
    assert (await status_of(env, user))["status"] == "active"
    await assert_ledger_clean(env)


async def test_unknown_purchase_is_400_purchase_not_found(emulated):
    env = await emulated()
    user = await env.api.register()
    body = {"purchaseId": "3aa0c7bd-964e-4562-b218-fe365adb4ae3", "productId": "premium_monthly"}
    resp = await env.api.post("/api/subscriptions/verify", body, token=user["accessToken"])
    assert_error_shape(resp, 400, "purchase_not_found")
    refused = await env.api.post("/api/subscriptions/verify", {**body, "productId": "points_100"},
                                 token=user["accessToken"])
    assert_error_shape(refused, 400, "not_a_subscription_product")


async def test_renew_verifies_a_new_purchase_after_expiry_and_extends_access(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    old = await subscribe(env, user)
    await verify(env, user, old)
    await env.api.post("/api/subscriptions/cancel", {"purchaseId": old["purchaseId"]}, token=user["accessToken"])
    await env.advance(MONTH + timedelta(days=1))
    assert (await status_of(env, user))["status"] == "expired"
    assert_error_shape(await env.api.post("/api/subscriptions/cancel", {}, token=user["accessToken"]),
                       409, "subscription_not_active")
    new = await subscribe(env, user)
    renewed = await verify(env, user, new, path="/api/subscriptions/renew")
    assert renewed.status == 200, renewed.text
    assert (renewed.json["status"], renewed.json["pointsGranted"], renewed.json["balance"]) == ("active", 300, 600)
    current = await status_of(env, user)
    verify_only = ("pointsGranted", "creditedBy", "creditedNow", "balance")
    assert current == {k: v for k, v in renewed.json.items() if k not in verify_only}
    profile = await env.api.get("/api/user/profile", token=user["accessToken"])
    assert profile.json["subscription"] == current
    await assert_ledger_clean(env)
