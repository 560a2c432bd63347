"""Repeated RuStore failures open the circuit breaker (visible in /metrics); RuStore refusing our tokens loses nothing.

The second part plays RuStore answering "token expired" to every token, fresh ones included (our
key was disabled or rotated): verify answers 503 `rustore_misconfigured`, the claim is kept, and the
reconciliation jobs keep the purchase due instead of giving it up, so fixing the credentials is enough.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from documents import purchases
from jobs import find_job
from jobs.runner import run_job
from tests.faults.support import (
    FAST_RUSTORE,
    METRICS_TOKEN,
    assert_wallet,
    balance_of,
    outage,
    payment_body,
    rustore_requests,
    sample,
    scrape,
    subscribe,
    subscription_body,
)
from tests.handlers.test_conventions import assert_error_shape

BREAKER = {**FAST_RUSTORE, "rustore_breaker_threshold": 3, "rustore_breaker_reset_s": 0.5}


async def test_breaker_opens_on_distinct_failing_requests_fails_fast_and_closes_when_rustore_is_back(emulated):
    env = await emulated(webhooks=False, metrics_token=METRICS_TOKEN, **BREAKER)
    user = await env.api.register()
    first, second, third = (env.buy("points_100", user=user), env.buy("points_500", user=user),
                            env.buy("points_100", user=user))
    outage(env, "http_503")
    for _ in range(4):  # one purchase verified again and again is one failing request: the breaker stays closed
        resp = await env.api.post("/api/payments/verify", payment_body(first), token=user["accessToken"])
        assert_error_shape(resp, 503, "rustore_unavailable")
    assert env.service.ctx.rustore.breaker_state == "closed"
    resp = await env.api.post("/api/payments/verify", payment_body(second), token=user["accessToken"])
    assert_error_shape(resp, 503, "rustore_unavailable")
    assert env.service.ctx.rustore.breaker_state == "open"  # a second purchase failing too: RuStore is down
    text = await scrape(env.api)
    assert sample(text, "rustore_circuit_open") == 1 and sample(text, "rustore_circuit_state") == 1
    assert sample(text, "rustore_circuit_opens_total") >= 1
    assert sample(text, "rustore_endpoint_failure_rate", endpoint="GET /public/v2/purchase/{invoiceId}") == 1
    # While open, requests fail fast without reaching RuStore, Retry-After says when to come back, the claim is kept.
    reached = rustore_requests(env)
    resp = await env.api.post("/api/payments/verify", payment_body(third), token=user["accessToken"])
    assert_error_shape(resp, 503, "rustore_unavailable")
    assert resp.json["details"] == {"retryable": True} and resp.headers["Retry-After"] == "1"
    assert rustore_requests(env) == reached  # answered by the open breaker, not by a timed-out call
    assert sample(await scrape(env.api), "rustore_calls_total", outcome="breaker_open") >= 1
    await env.advance(60)
    during = await run_job(env.service.ctx, find_job("purchase-reconcile"))
    assert during.outcome == "ok" and during.summary["unavailable"] == 3
    for sdk in (first, second, third):  # the outage is nobody's fault: no purchase's own backoff grew
        doc = await purchases.find_purchase(env.service.ctx.db, sdk["invoiceId"], False)
        assert not doc.get("check_attempts") and doc["state"] == "pending"
    # RuStore is back: after the reset time one trial closes the breaker and the recovery pass credits all, once.
    env.emulator.clear_faults()
    for _ in range(100):
        if await balance_of(env, user) == 700:
            break
        await asyncio.sleep(0.05)
    assert env.service.ctx.rustore.breaker_state == "closed"
    assert sample(await scrape(env.api), "rustore_circuit_open") == 0
    resp = await env.api.post("/api/payments/verify", payment_body(first), token=user["accessToken"])
    assert resp.status == 200, resp.text
    await env.advance(timedelta(minutes=3))
    assert (await run_job(env.service.ctx, find_job("purchase-reconcile"))).summary["credited"] == 0
    await assert_wallet(env, user, [("buy", 100), ("buy", 500), ("buy", 100)])


async def test_rustore_refusing_our_tokens_is_503_misconfigured_and_purchases_are_credited_once_fixed(emulated):
    env = await emulated(webhooks=False, **FAST_RUSTORE)
    user = await env.api.register()
    known, new = env.buy("points_100", user=user, outcome="pending"), env.buy("points_500", user=user)
    assert (await env.api.post("/api/payments/verify", payment_body(known), token=user["accessToken"])).status == 202
    env.emulator.invoice_action(int(known["invoiceId"]), "pay")
    env.emulator.set_fault("*", "expired_token")  # even a fresh token is refused: our credentials look broken
    resp = await env.api.post("/api/payments/verify", payment_body(new), token=user["accessToken"])
    assert_error_shape(resp, 503, "rustore_misconfigured")
    await env.advance(timedelta(minutes=2))
    during = await run_job(env.service.ctx, find_job("purchase-reconcile"))
    assert during.outcome == "ok" and during.summary["credited"] == 0 and during.summary["stopped_early"]
    for sdk in (known, new):  # neither given up: a credentials problem says nothing about the purchase
        doc = await purchases.find_purchase(env.service.ctx.db, sdk["invoiceId"], False)
        assert doc["state"] == "pending" and doc["next_check_at"] is not None
    assert await balance_of(env, user) == 0
    env.emulator.clear_faults()
    await env.advance(timedelta(minutes=5))
    assert (await run_job(env.service.ctx, find_job("purchase-reconcile"))).summary["credited"] == 2
    await assert_wallet(env, user, [("buy", 100), ("buy", 500)])


async def test_rustore_refusing_our_tokens_keeps_subscriptions_due_and_grants_once_fixed(emulated):
    env = await emulated(webhooks=False, **FAST_RUSTORE)
    user = await env.api.register()
    sdk = await subscribe(env, user)
    env.emulator.set_fault("*", "expired_token")
    resp = await env.api.post("/api/subscriptions/verify", subscription_body(sdk), token=user["accessToken"])
    assert_error_shape(resp, 503, "rustore_misconfigured")
    await env.advance(timedelta(minutes=2))
    during = await run_job(env.service.ctx, find_job("subscription-reconcile"))
    assert during.outcome == "ok" and during.summary["points_granted"] == 0 and during.summary["stopped_early"]
    env.emulator.clear_faults()
    await env.advance(timedelta(minutes=5))
    assert (await run_job(env.service.ctx, find_job("subscription-reconcile"))).summary["points_granted"] == 300
    await assert_wallet(env, user, [("subscription_grant", 300)])
