"""Signed events to the app's backend, over HTTP end to end: RuStore emulator -> our server -> a real receiver."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta

import pytest

from core.events_admin import events_data
from core.events_signature import SignatureError, sign, verify
from documents import events
from jobs import find_job
from jobs.runner import run_job
from tests.handlers.test_payments import verify_body
from tests.handlers.test_subscriptions import MONTH, subscribe
from tests.handlers.test_subscriptions import verify as verify_subscription
from tests.handlers.test_webhooks import post_webhook, recorded, replay
from tests.support.crash_runner import REPO
from tests.support.receiver import running_receiver

SECRET = "whsec_" + "s" * 32


@pytest.fixture
async def receiver():
    async with running_receiver() as r:
        yield r


async def with_events(emulated, receiver, **overrides):
    return await emulated(events_webhook_urls=(receiver.url,), events_webhook_secret=SECRET, **overrides)


async def deliver(env) -> dict:
    outcome = await run_job(env.service.ctx, find_job("event-delivery"))
    assert outcome.outcome == "ok", outcome.summary
    return outcome.summary


async def stored_events(env) -> list[dict]:
    return await env.service.ctx.db[events.COLLECTION].find({}).sort("order", 1).to_list(1000)


def args(**kw):
    import argparse
    return argparse.Namespace(**{"endpoint": None, "status": None, "limit": 50, "event_id": None, "all_dead": False, **kw})


async def verify_with_cli(delivery, tmp_path) -> int:
    """`python server.py events verify-signature` as a receiver would run it."""
    body = tmp_path / "body.json"
    body.write_bytes(delivery.body)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "server.py", "events", "verify-signature", "--signature", delivery.headers["Signature"],
        "--body-file", str(body), cwd=REPO, env={"PATH": os.environ.get("PATH", ""), "EVENTS_WEBHOOK_SECRET": SECRET},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    await proc.communicate()
    return proc.returncode


async def test_a_verified_purchase_reaches_the_receiver_signed_as_purchase_credited_then_points_changed(
        emulated, receiver, tmp_path):
    env = await with_events(emulated, receiver, webhooks=False)
    user = await env.api.register()
    sdk = env.buy("points_100", user=user)
    assert (await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])).status == 200
    assert (await deliver(env))["delivered"] == 2
    assert receiver.types() == ["purchase.credited", "points.changed"]
    credited, points = receiver.events
    assert credited["userId"] == user["userId"] and credited["sandbox"] is False and credited["id"].startswith("evt_")
    assert credited["data"] == {"invoiceId": sdk["invoiceId"], "productId": "points_100", "points": 100,
                                "balanceAfter": 100}
    assert points["data"]["type"] == "buy" and points["data"]["amount"] == 100 and points["data"]["balanceAfter"] == 100
    assert set(credited) == {"id", "type", "createdAt", "userId", "sandbox", "data"}
    for delivery in receiver.deliveries:
        assert delivery.headers["Event-Id"] == delivery.event["id"]
        assert delivery.headers["Event-Type"] == delivery.event["type"]
        verify(SECRET, delivery.headers["Signature"], delivery.body)
        assert await verify_with_cli(delivery, tmp_path) == 0
    tampered = receiver.deliveries[0]
    with pytest.raises(SignatureError):
        verify(SECRET, tampered.headers["Signature"], tampered.body + b" ")
    tampered.body += b" "
    assert await verify_with_cli(tampered, tmp_path) == 1
    assert await deliver(env) == {**await deliver(env), "delivered": 0}  # nothing is sent twice


def test_signatures_older_than_five_minutes_or_with_another_secret_are_refused():
    body = b'{"id":"evt_1"}'
    header = sign(SECRET, body, timestamp=1_700_000_000)
    assert verify(SECRET, header, body, now=1_700_000_000 + 299) == 1_700_000_000
    with pytest.raises(SignatureError, match="more than 300"):
        verify(SECRET, header, body, now=1_700_000_000 + 301)
    with pytest.raises(SignatureError, match="no v1"):
        verify("another-secret-of-some-length", header, body, now=1_700_000_000)
    with pytest.raises(SignatureError):
        verify(SECRET, "v1=abc", body)


async def test_a_webhook_only_purchase_emits_once_however_often_rustore_redelivers(emulated, receiver):
    env = await with_events(emulated, receiver)  # RuStore's notifications reach our webhook; no client verify
    user = await env.api.register()
    await env.order_and_buy(user, "points_100")
    await env.settle()
    await deliver(env)
    assert receiver.types() == ["purchase.credited", "points.changed"]
    for _ in range(3):  # RuStore replays and redelivers the same notifications
        for note in recorded(env):
            assert (await post_webhook(env, replay(env, note))).status == 200
        await env.settle()
    await run_job(env.service.ctx, find_job("purchase-reconcile"))
    await deliver(env)
    assert receiver.types() == ["purchase.credited", "points.changed"]
    assert len(await stored_events(env)) == 2


async def test_a_receiver_answering_500_twice_gets_the_same_event_a_third_time(emulated, receiver):
    env = await with_events(emulated, receiver, webhooks=False, events_retry_schedule_s=("0", "0"))
    user = await env.api.register()
    receiver.answers = [500, 500]
    await env.api.post("/api/payments/verify", verify_body(env.buy("points_100", user=user)), token=user["accessToken"])
    for expected in (1, 2):
        summary = await deliver(env)
        assert (summary["failed"], summary["delivered"]) == (1, 0)
        assert len(receiver.deliveries) == expected  # the user's later event waits behind the failing one
    assert (await deliver(env))["delivered"] == 2
    ids = [d.headers["Event-Id"] for d in receiver.deliveries]
    assert ids[0] == ids[1] == ids[2] and receiver.types()[2:] == ["purchase.credited", "points.changed"]
    state = (await stored_events(env))[0]["deliveries"]
    (only,) = state.values()
    assert (only["status"], only["attempts"], only["last_status"]) == ("delivered", 3, 200)


async def test_after_the_schedule_an_event_is_dead_and_an_operator_replays_it(emulated, receiver):
    env = await with_events(emulated, receiver, webhooks=False, events_retry_schedule_s=("0",))
    user = await env.api.register()
    receiver.answers = [503, 503, 503, 503]
    await env.api.post("/api/payments/verify", verify_body(env.buy("points_100", user=user)), token=user["accessToken"])
    await deliver(env)  # purchase.credited: first attempt fails
    summary = await deliver(env)  # its retry fails too: dead, and the user's next event may go (fails twice too)
    assert summary["dead"] >= 1
    await deliver(env)
    ctx = env.service.ctx
    code, dead = await events_data(ctx, args(events_command="deliveries", status="dead"))
    assert code == 0 and sorted(d["type"] for d in dead) == ["points.changed", "purchase.credited"]
    assert all(d["endpoint"] == receiver.url and d["attempts"] == 2 for d in dead)
    assert (await events_data(ctx, args(events_command="deliveries", status="dead", endpoint=receiver.url)))[1] == dead
    assert (await events_data(ctx, args(events_command="deliveries", status="dead", endpoint="http://other/")))[1] == []
    code, shown = await events_data(ctx, args(events_command="show", event_id=dead[0]["eventId"]))
    assert code == 0 and shown["event"]["id"] == dead[0]["eventId"] and shown["deliveries"][0]["status"] == "dead"
    code, revived = await events_data(ctx, args(events_command="replay", all_dead=True))
    assert (code, revived) == (0, {"revived": 2})
    before = len(receiver.deliveries)
    assert (await deliver(env))["delivered"] == 2
    assert [e["type"] for e in receiver.events[before:]] == ["purchase.credited", "points.changed"]
    assert (await events_data(ctx, args(events_command="replay", event_id="evt_nothing")))[0] == 1


async def test_events_of_one_user_arrive_in_the_order_they_happened(emulated, receiver):
    env = await with_events(emulated, receiver, webhooks=False, events_retry_schedule_s=("0",))
    user, other = await env.api.register(), await env.api.register()
    receiver.answers = [500]
    for pack in ("points_100", "points_500"):
        await env.api.post("/api/payments/verify", verify_body(env.buy(pack, user=user)), token=user["accessToken"])
    await env.api.post("/api/payments/verify", verify_body(env.buy("points_100", user=other)), token=other["accessToken"])
    await env.api.post("/api/points/spend", {"amount": 50}, token=user["accessToken"], headers={"Idempotency-Key": "k1"})
    await deliver(env)
    await deliver(env)
    mine: list[dict] = []
    for event in receiver.events:  # a failed head is retried before anything later of its user is sent
        if event["userId"] == user["userId"] and (not mine or mine[-1]["id"] != event["id"]):
            mine.append(event)
    assert len(receiver.deliveries) == 8  # 7 events, one of them twice
    assert [(e["type"], e["data"].get("balanceAfter")) for e in mine] == [
        ("purchase.credited", 100), ("points.changed", 100), ("purchase.credited", 600), ("points.changed", 600),
        ("points.changed", 550)]


async def test_subscription_lifecycle_and_entitlement_changes_are_announced(emulated, receiver):
    env = await with_events(emulated, receiver, webhooks=False)
    user = await env.api.register()
    sdk = await subscribe(env, user)
    await verify_subscription(env, user, sdk)
    await deliver(env)
    assert receiver.types() == ["subscription.started", "points.changed", "entitlement.changed"]
    granted = receiver.events[2]["data"]
    assert (granted["entitlement"], granted["change"], granted["active"], granted["productId"]) == \
        ("premium", "granted", True, "premium_monthly")
    await env.advance(MONTH + timedelta(hours=1))
    await verify_subscription(env, user, sdk)
    assert (await env.api.post("/api/subscriptions/cancel", {}, token=user["accessToken"])).status == 200
    await deliver(env)
    assert receiver.types()[3:] == ["subscription.renewed", "points.changed", "subscription.cancelled"]
    await env.advance(MONTH)
    await deliver(env)
    assert receiver.types()[6:] == ["subscription.expired", "entitlement.changed"]
    lost = receiver.events[-1]["data"]
    assert (lost["change"], lost["active"]) == ("lost", False)
    await deliver(env)
    assert len(receiver.deliveries) == 8


async def test_without_a_url_nothing_is_stored_or_sent(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    await env.api.post("/api/payments/verify", verify_body(env.buy("points_100", user=user)), token=user["accessToken"])
    assert await env.service.ctx.db[events.COLLECTION].count_documents({}) == 0
    assert (await deliver(env)) == {"skipped": "EVENTS_WEBHOOK_URLS is not set"}


def metric(name: str, **labels) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_refund_is_announced_with_what_was_taken_back_and_the_shortfall(emulated, receiver):
    env = await with_events(emulated, receiver)
    user = await env.api.register()
    sdk = await env.order_and_buy(user, "points_100")
    await env.settle()
    await env.api.post("/api/points/spend", {"amount": 60}, token=user["accessToken"], headers={"Idempotency-Key": "s"})
    env.emulator.invoice_action(int(sdk["invoiceId"]), "refund")
    await env.settle()
    await deliver(env)
    assert receiver.types() == ["purchase.credited", "points.changed", "points.changed", "purchase.revoked",
                                "points.changed"]
    revoked = receiver.events[3]["data"]
    assert revoked == {"invoiceId": sdk["invoiceId"], "productId": "points_100", "status": "REFUNDED",
                       "pointsTakenBack": 40, "requested": 100, "shortfall": 60, "balanceAfter": 0}
    assert receiver.events[4]["data"]["type"] == "clawback" and receiver.events[4]["data"]["amount"] == -40


async def test_a_non_consumable_is_announced_with_its_entitlement_and_again_when_refunded(emulated, receiver):
    from core.settings import load_settings
    from tests.handlers.test_payments import NO_ADS

    env = await with_events(emulated, receiver, webhooks=False, extra={"products": [*load_settings().extra["products"],
                                                                                    NO_ADS]},
                            entitlements_override="premium=premium_monthly;no_ads=no_ads")
    user = await env.api.register()
    sdk = env.buy("no_ads", user=user)
    await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])
    await deliver(env)
    assert receiver.types() == ["purchase.credited", "entitlement.changed"]
    assert receiver.events[0]["data"] == {"invoiceId": sdk["invoiceId"], "productId": "no_ads", "points": 0}
    assert receiver.events[1]["data"]["entitlement"] == "no_ads" and receiver.events[1]["data"]["expiresAt"] is None
    env.emulator.invoice_action(int(sdk["invoiceId"]), "refund")
    await run_job(env.service.ctx, find_job("refund-sweep"))
    await deliver(env)
    assert receiver.types()[2:] == ["purchase.revoked", "entitlement.changed"]
    assert (receiver.events[3]["data"]["change"], receiver.events[3]["data"]["active"]) == ("lost", False)


async def test_delivery_metrics_count_created_delivered_failed_and_the_oldest_undelivered_age(emulated, receiver):
    env = await with_events(emulated, receiver, webhooks=False, events_retry_schedule_s=("0", "0"))
    user = await env.api.register()
    before = {name: metric(name) for name in ("events_delivered_total", "events_failed_attempts_total")}
    created = metric("events_created_total", type="points.changed")
    receiver.answers = [500]
    await env.api.post("/api/payments/verify", verify_body(env.buy("points_100", user=user)), token=user["accessToken"])
    assert metric("events_created_total", type="points.changed") == created + 1
    await deliver(env)
    env.clock.advance(30)
    await deliver(env)
    assert metric("events_failed_attempts_total") == before["events_failed_attempts_total"] + 1
    assert metric("events_delivered_total") == before["events_delivered_total"] + 2
    assert metric("events_oldest_undelivered_age_seconds") == 0
    receiver.answers = [500]
    await env.api.post("/api/points/spend", {"amount": 5}, token=user["accessToken"], headers={"Idempotency-Key": "m"})
    env.clock.advance(30)
    await deliver(env)
    assert metric("events_oldest_undelivered_age_seconds") == 30


async def test_a_refunded_subscription_charge_is_announced_as_revoked_and_the_entitlement_lost(emulated, receiver):
    env = await with_events(emulated, receiver)
    user = await env.api.register()
    sdk = await subscribe(env, user)
    await env.settle()
    await verify_subscription(env, user, sdk)
    await deliver(env)
    assert receiver.types() == ["subscription.started", "points.changed", "entitlement.changed"]
    env.emulator.invoice_action(int(sdk["invoiceId"]), "refund")
    await env.settle()
    await deliver(env)
    assert receiver.types()[3:] == ["subscription.revoked", "points.changed", "entitlement.changed"]
    revoked = receiver.events[3]["data"]
    assert (revoked["purchaseId"], revoked["productId"], revoked["pointsTakenBack"], revoked["shortfall"]) == \
        (sdk["purchaseId"], "premium_monthly", 300, 0)
    assert receiver.events[5]["data"]["change"] == "lost"
