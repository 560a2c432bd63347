"""RuStore failing during verify and webhook processing: the user sees 503 + retry, money lands exactly once later.

Every outage mode the emulator can play (timeout, HTTP 500/502/503, a malformed body) is run
against both verify endpoints and against a notification processed while RuStore's API is down;
an expired token is run against the same paths and must succeed after one token refresh.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from documents import purchases, webhooks
from jobs import find_job
from jobs.runner import run_job
from tests.faults.support import (
    FAST_RUSTORE,
    OUTAGES,
    assert_wallet,
    balance_of,
    outage,
    payment_body,
    subscribe,
    subscription_body,
)
from tests.handlers.test_conventions import assert_error_shape


def assert_unavailable(resp) -> None:
    """The answer the app must treat as "keep the purchase, retry later"."""
    assert_error_shape(resp, 503, "rustore_unavailable")
    assert resp.json["details"] == {"retryable": True}
    assert int(resp.headers["Retry-After"]) > 0


async def job(env, name: str) -> dict:
    outcome = await run_job(env.service.ctx, find_job(name))
    assert outcome.outcome == "ok", outcome.summary
    return outcome.summary


@pytest.mark.parametrize("mode", OUTAGES)
async def test_payment_verify_during_outage_is_503_and_the_claim_is_credited_once_by_the_job(emulated, mode):
    env = await emulated(webhooks=False, **FAST_RUSTORE)
    user = await env.api.register()
    sdk = env.buy("points_100", user=user)
    down = outage(env, mode)
    assert_unavailable(await env.api.post("/api/payments/verify", payment_body(sdk), token=user["accessToken"]))
    assert down.hits() >= 1  # the 503 is RuStore's fault answering, not a call left unmade
    assert await balance_of(env, user) == 0
    claim = await purchases.find_purchase(env.service.ctx.db, sdk["invoiceId"], False)
    assert claim["state"] == "pending" and claim["next_check_at"] is not None  # remembered for the job
    env.emulator.clear_faults()
    await env.advance(60)
    assert (await job(env, "purchase-reconcile"))["credited"] == 1  # even if the app never retries
    again = await env.api.post("/api/payments/verify", payment_body(sdk), token=user["accessToken"])
    assert again.status == 200 and again.json["status"] == "already_credited"
    assert (await job(env, "purchase-reconcile"))["credited"] == 0
    await assert_wallet(env, user, [("buy", 100)])


@pytest.mark.parametrize("mode", OUTAGES)
async def test_subscription_verify_during_outage_is_503_and_the_job_grants_the_period_once(emulated, mode):
    env = await emulated(webhooks=False, **FAST_RUSTORE)
    user = await env.api.register()
    sdk = await subscribe(env, user)
    down = outage(env, mode)
    assert_unavailable(await env.api.post("/api/subscriptions/verify", subscription_body(sdk),
                                          token=user["accessToken"]))
    assert down.hits() >= 1
    assert await balance_of(env, user) == 0
    env.emulator.clear_faults()
    await env.advance(timedelta(minutes=2))
    assert (await job(env, "subscription-reconcile"))["points_granted"] == 300
    again = await env.api.post("/api/subscriptions/verify", subscription_body(sdk), token=user["accessToken"])
    assert again.status == 200 and (again.json["pointsGranted"], again.json["creditedBy"]) == (300, "job")
    assert again.json["creditedNow"] is False
    await assert_wallet(env, user, [("subscription_grant", 300)])


@pytest.mark.parametrize("mode", OUTAGES)
async def test_notification_during_outage_fails_and_the_retry_job_applies_it_once(emulated, mode):
    env = await emulated(**FAST_RUSTORE)
    user = await env.api.register()
    down = outage(env, mode)
    await env.order_and_buy(user, "points_100")
    await env.settle()
    assert down.hits() >= 1  # processing the notifications met the outage
    stored = await env.service.ctx.db[webhooks.COLLECTION].find({}).to_list(None)
    assert stored and {e["status"] for e in stored} == {"failed"}
    assert all(e["last_error"].startswith("RuStoreUnavailable") for e in stored)
    assert {d["status"] for d in env.emulator.deliveries()} == {200}  # RuStore got its acknowledgement anyway
    assert await balance_of(env, user) == 0
    assert (await job(env, "webhook-retry"))["processed"] == 0  # still backing off
    env.emulator.clear_faults()
    await env.advance(timedelta(seconds=80))
    assert (await job(env, "webhook-retry"))["processed"] == len(stored)
    await assert_wallet(env, user, [("buy", 100)])


async def test_expired_token_during_verify_is_refreshed_and_the_purchase_credited(emulated):
    env = await emulated(webhooks=False, **FAST_RUSTORE)
    user = await env.api.register()
    env.emulator.set_fault("payment_v2", "expired_token", count=1)
    resp = await env.api.post("/api/payments/verify", payment_body(env.buy("points_100", user=user)), token=user["accessToken"])
    assert resp.status == 200 and resp.json["status"] == "credited", resp.text
    assert env.emulator.auth_calls == 2  # the rejected token was dropped and a new one fetched
    await assert_wallet(env, user, [("buy", 100)])


async def test_expired_token_during_subscription_verify_is_refreshed_and_the_period_granted(emulated):
    env = await emulated(webhooks=False, **FAST_RUSTORE)
    user = await env.api.register()
    sdk = await subscribe(env, user)
    env.emulator.set_fault("subscription_v4", "expired_token", count=1)
    resp = await env.api.post("/api/subscriptions/verify", subscription_body(sdk), token=user["accessToken"])
    assert resp.status == 200 and resp.json["pointsGranted"] == 300, resp.text
    assert env.emulator.auth_calls == 2
    await assert_wallet(env, user, [("subscription_grant", 300)])


async def test_expired_token_during_webhook_processing_is_refreshed_inline(emulated):
    env = await emulated(**FAST_RUSTORE)
    user = await env.api.register()
    assert (await env.api.get("/api/products")).status == 200  # the client now holds a RuStore token...
    assert env.emulator.auth_calls == 1
    env.emulator.expire_tokens()  # ...which RuStore then stops accepting
    await env.order_and_buy(user, "points_100")
    await env.settle()
    stored = await env.service.ctx.db[webhooks.COLLECTION].find({}).to_list(None)
    assert stored and {e["status"] for e in stored} == {"processed"}
    assert env.emulator.auth_calls == 2
    await assert_wallet(env, user, [("buy", 100)])
