"""RuStore failing while the reconciliation jobs run: the summary reports it, nothing is lost, the next run finishes.

`purchase-reconcile`, `subscription-reconcile` and `refund-sweep` each meet every outage mode
(timeout, HTTP 500/502/503, malformed body) and an expired token. During an outage a run ends
`ok` with the work counted as unavailable and rescheduled; once RuStore answers again the next
due run applies it exactly once.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from documents import purchases
from documents.subscriptions import store as subscriptions_doc
from jobs import find_job
from jobs.runner import run_job
from tests.faults.support import (
    FAST_RUSTORE,
    OUTAGES,
    Outage,
    assert_wallet,
    balance_of,
    outage,
    payment_body,
    subscribe,
    subscription_body,
)

FAULTS = [*OUTAGES, "expired_token"]
# The endpoint each job reads first; an expired token is played there, after the client already holds one.
TOKEN_ENDPOINT = {"purchase-reconcile": "payment_v2", "subscription-reconcile": "subscription_v4",
                  "refund-sweep": "payments_list"}


def fault(env, mode: str, job_name: str) -> Outage | None:
    """Play the fault; an outage is returned so the test can count what it answered."""
    if mode == "expired_token":
        env.emulator.set_fault(TOKEN_ENDPOINT[job_name], "expired_token", count=1)
        return None
    return outage(env, mode)


async def job(env, name: str) -> dict:
    outcome = await run_job(env.service.ctx, find_job(name))
    assert outcome.outcome == "ok", outcome.summary  # a RuStore outage never fails (or crashes) a run
    return outcome.summary


@pytest.mark.parametrize("mode", FAULTS)
async def test_purchase_reconcile_during_outage_reschedules_and_credits_once_after(emulated, mode):
    env = await emulated(webhooks=False, **FAST_RUSTORE)
    user = await env.api.register()
    sdk = env.buy("points_100", user=user, outcome="pending")
    pending = await env.api.post("/api/payments/verify", payment_body(sdk), token=user["accessToken"])
    assert pending.status == 202, pending.text
    env.emulator.invoice_action(int(sdk["invoiceId"]), "pay")  # paid at RuStore; no webhook in this test
    down = fault(env, mode, "purchase-reconcile")
    await env.advance(timedelta(minutes=2))
    during = await job(env, "purchase-reconcile")
    if down is None:
        assert during["credited"] == 1  # one refreshed token later the run just works
        assert env.emulator.auth_calls == 2  # the rejected token was replaced once
    else:
        assert down.hits() >= 1  # the run really met the outage
        assert (during["unavailable"], during["credited"], during["given_up"]) == (1, 0, 0)
        doc = await purchases.find_purchase(env.service.ctx.db, sdk["invoiceId"], False)
        assert doc["state"] == "pending" and doc["next_check_at"] is not None and doc["last_error"]
        assert await balance_of(env, user) == 0
        env.emulator.clear_faults()
        await env.advance(timedelta(minutes=3))  # past the first backoff step
        assert (await job(env, "purchase-reconcile"))["credited"] == 1
    await env.advance(timedelta(minutes=30))
    assert (await job(env, "purchase-reconcile"))["credited"] == 0
    await assert_wallet(env, user, [("buy", 100)])


@pytest.mark.parametrize("mode", FAULTS)
async def test_subscription_reconcile_during_outage_backs_off_and_grants_once_after(emulated, mode):
    env = await emulated(webhooks=False, **FAST_RUSTORE)
    user = await env.api.register()
    sdk = await subscribe(env, user, outcome="pending")
    pending = await env.api.post("/api/subscriptions/verify", subscription_body(sdk), token=user["accessToken"])
    assert pending.status == 202, pending.text
    env.emulator.invoice_action(int(sdk["invoiceId"]), "pay")
    down = fault(env, mode, "subscription-reconcile")
    await env.advance(timedelta(minutes=5))
    during = await job(env, "subscription-reconcile")
    if down is None:
        assert during["points_granted"] == 300
        assert env.emulator.auth_calls == 2  # the rejected token was replaced once
    else:
        assert down.hits() >= 1
        assert (during["unavailable"], during["points_granted"], during["given_up"]) == (1, 0, 0)
        doc = await subscriptions_doc.find_subscription(env.service.ctx.db, sdk["purchaseId"], False)
        assert doc["next_check_at"] is not None and doc["last_error"]
        env.emulator.clear_faults()
        await env.advance(timedelta(minutes=10))
        assert (await job(env, "subscription-reconcile"))["points_granted"] == 300
    await env.advance(timedelta(hours=2))
    assert (await job(env, "subscription-reconcile"))["points_granted"] == 0
    await assert_wallet(env, user, [("subscription_grant", 300)])


@pytest.mark.parametrize("mode", FAULTS)
async def test_refund_sweep_during_outage_changes_nothing_and_claws_back_once_after(emulated, mode):
    env = await emulated(webhooks=False, refund_sweep_days=1, **FAST_RUSTORE)
    user = await env.api.register()
    sdk = env.buy("points_100", user=user)
    credited = await env.api.post("/api/payments/verify", payment_body(sdk), token=user["accessToken"])
    assert credited.status == 200, credited.text
    env.emulator.invoice_action(int(sdk["invoiceId"]), "refund")
    down = fault(env, mode, "refund-sweep")
    during = await job(env, "refund-sweep")
    if down is None:
        assert during["revoked"] == 1
        assert env.emulator.auth_calls == 2  # the rejected token was replaced once
    else:
        assert down.hits() >= 1
        assert during["revoked"] == 0 and during["unavailable_days"] >= 1
        assert await balance_of(env, user) == 100  # nothing taken on a guess
        env.emulator.clear_faults()
        assert (await job(env, "refund-sweep"))["revoked"] == 1
    again = await job(env, "refund-sweep")
    assert again["unavailable_days"] == 0
    await assert_wallet(env, user, [("buy", 100), ("clawback", -100)])
