"""Job `subscription-reconcile` against the RuStore emulator: acknowledgement retries, outages, give-ups, final states."""

from __future__ import annotations

from datetime import timedelta

from documents import wallet
from jobs import find_job
from jobs.runner import run_job
from tests.handlers.test_subscriptions import MONTH, balance_of, status_of, subscribe, verify


async def reconcile(env) -> dict:
    outcome = await run_job(env.service.ctx, find_job("subscription-reconcile"))
    assert outcome.outcome == "ok", outcome.summary
    return outcome.summary


async def stored(env, purchase_id: str) -> dict:
    return await env.service.ctx.db.subscriptions.find_one({"purchase_id": purchase_id})


async def test_a_refused_acknowledgement_never_fails_verify_and_the_job_retries_it(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    sdk = await subscribe(env, user)
    env.emulator.set_fault("subscription_ack", "error", status=503)
    resp = await verify(env, user, sdk)
    assert resp.status == 200 and resp.json["pointsGranted"] == 300
    record = env.emulator.store.subscription(sdk["purchaseId"])
    assert not record.acknowledged and (await stored(env, sdk["purchaseId"]))["ack_attempts"] == 1
    env.emulator.clear_faults()
    assert (await reconcile(env))["checked"] == 0  # backing off
    await env.advance(timedelta(minutes=3))
    assert (await reconcile(env)) == {"checked": 1, "points_granted": 0, "points_clawed_back": 0, "unavailable": 0,
                                      "given_up": 0, "failed": 0, "stopped_early": False}
    assert record.acknowledged and (await stored(env, sdk["purchaseId"]))["acknowledged"] is True
    assert await balance_of(env, user) == 300


async def test_an_outage_backs_off_and_ends_the_run_early_then_every_renewal_is_granted(emulated):
    env = await emulated(webhooks=False)
    users = [await env.api.register() for _ in range(4)]
    for user in users:
        await verify(env, user, await subscribe(env, user))
    await env.advance(MONTH + timedelta(hours=1))
    env.emulator.set_fault("*", "error", status=503)
    summary = await reconcile(env)
    assert (summary["unavailable"], summary["checked"], summary["stopped_early"]) == (3, 0, True)
    env.emulator.clear_faults()
    docs = [d async for d in env.service.ctx.db.subscriptions.find({"last_error": "RuStoreUnavailable"})]
    assert len(docs) == 3 and all(d["next_check_at"] > env.clock.now() for d in docs)
    await env.advance(timedelta(minutes=5))
    granted = (await reconcile(env))["points_granted"]
    await env.service.ctx.recovery.wait_idle(10)  # RuStore answering again also starts the outage recovery pass
    assert granted > 0 and [await balance_of(env, u) for u in users] == [600] * 4
    assert (await wallet.verify_ledger(env.service.ctx.db)).ok


async def test_one_subscription_rustore_does_not_know_is_given_up_without_stopping_the_others(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    sdk = await subscribe(env, user)
    unknown = {"purchaseId": "3aa0c7bd-964e-4562-b218-fe365adb4ae3", "productId": "premium_monthly",
               "orderId": None, "sandbox": False}
    env.emulator.set_fault("*", "error", status=503)
    for body in (unknown, sdk):  # both claims are recorded for the job
        assert (await verify(env, user, body)).status == 503
    env.emulator.clear_faults()
    await env.advance(timedelta(minutes=2))
    summary = await reconcile(env)
    assert (summary["checked"], summary["given_up"], summary["points_granted"]) == (1, 1, 300)
    assert (await stored(env, unknown["purchaseId"]))["next_check_at"] is None
    assert (await status_of(env, user))["status"] == "active"


async def test_a_cancelled_subscription_is_closed_after_its_end_and_no_longer_checked(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    sdk = await subscribe(env, user)
    await verify(env, user, sdk)
    await env.api.post("/api/subscriptions/cancel", {}, token=user["accessToken"])
    await env.advance(MONTH + timedelta(minutes=5))
    assert (await reconcile(env))["checked"] == 1
    doc = await stored(env, sdk["purchaseId"])
    assert (doc["status"], doc["next_check_at"]) == ("CLOSED", None)
    assert [h["status"] for h in doc["history"]] == ["ACTIVE", "CANCELLED", "CLOSED"]
    assert (await status_of(env, user))["status"] == "expired"
    await env.advance(timedelta(days=2))
    assert (await reconcile(env))["checked"] == 0
