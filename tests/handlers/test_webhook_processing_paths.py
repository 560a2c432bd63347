"""Processing paths of stored RuStore notifications that the money tests do not reach: malformed and unknown
records, a process without RuStore, a catalog that changed, refunded subscription charges, attempts that lost
their claim. Each is driven through the real app, the loopback RuStore emulator and the processor the app builds.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest

from core.webhook_wiring import webhook_processor
from documents import wallet
from documents.webhooks import store as events
from rustore.emulator import EmulatorProduct
from tests.handlers.test_subscriptions import subscribe
from tests.handlers.test_webhooks import envelope, post_webhook, recorded, settle_all, stored_events
from tests.jobs.test_webhook_retry import balance_of, paid_purchase, persisted_only
from tests.support.barrier import HookedClient


def altered(env, note: dict, notification_id: str, **changes) -> bytes:
    """A recorded notification sent again under a new id with some of its data changed (None: left out)."""
    content = dict(note["content"])
    data = json.loads(content["data"])
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    content["data"] = json.dumps(data)
    return envelope(env, content, notification_id, sandbox=note["sandbox"])


async def event(env, event_id: str) -> dict:
    [found] = [e for e in await stored_events(env) if e["_id"] == event_id]
    return found


async def test_notifications_lacking_what_identifies_the_purchase_are_dead_lettered_as_malformed(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    await env.order_and_buy(user, "points_100")
    env.subscribe("premium_monthly", app_user_id=user["userId"])
    invoice_note = recorded(env)[0]  # the points purchase's first INVOICE_STATUS
    sub_note = recorded(env, "SUBSCRIPTION_EVENT")[0]
    bodies = {"m-invoice": altered(env, invoice_note, "m-invoice", invoice_id=None),
              "m-purchase": altered(env, sub_note, "m-purchase", purchase_id=None),
              "m-product": altered(env, sub_note, "m-product", product_code=None)}
    for body in bodies.values():
        assert (await post_webhook(env, body)).json["status"] == "accepted"
    await env.settle()
    for notification_id in bodies:
        stored = await event(env, f"real:{notification_id}")
        assert (stored["status"], stored["attempts"]) == ("dead", 1)
        assert stored["last_error"].startswith("malformed_notification:")
    assert await balance_of(env, user) == 0
    assert await env.service.ctx.db.subscriptions.count_documents({}) == 0


async def test_a_notification_of_an_invoice_rustore_does_not_know_is_retried_not_dead_lettered(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    await env.order_and_buy(user, "points_100")
    assert (await post_webhook(env, altered(env, recorded(env)[0], "u-1", invoice_id="987654321"))).status == 200
    await env.settle()
    stored = await event(env, "real:u-1")
    assert (stored["status"], stored["attempts"]) == ("failed", 1)  # more likely lag at RuStore than a forgery
    assert stored["last_error"].startswith("purchase_not_found:") and stored["next_attempt_at"] is not None
    assert await balance_of(env, user) == 0


async def test_a_process_without_rustore_configured_leaves_the_event_for_a_later_attempt(emulated):
    env = await emulated(webhooks=False)
    user, confirmed = await paid_purchase(env)
    event_id = await persisted_only(env, confirmed)
    without_rustore = replace(webhook_processor(env.service.ctx), client=None)
    result = await without_rustore.process(event_id)
    assert (result.outcome, result.error.split(":")[0]) == ("failed", "ProcessingUnavailable")
    stored = await event(env, event_id)
    assert (stored["status"], stored["attempts"]) == ("failed", 1) and await balance_of(env, user) == 0
    await env.advance(events.RETRY_CAP)
    assert (await webhook_processor(env.service.ctx).process(event_id)).outcome == "processed"
    assert await balance_of(env, user) == 100


async def test_a_refund_of_a_credited_purchase_is_taken_back_after_sandbox_and_the_product_were_turned_off(emulated):
    env = await emulated(webhooks=False)  # sandbox purchases allowed, as the test settings have it
    user = await env.api.register()
    await env.order_and_buy(user, "points_100", sandbox=True)
    confirmed = recorded(env)[-1]
    ctx = env.service.ctx
    assert (await webhook_processor(ctx).process(await persisted_only(env, confirmed))).outcome == "processed"
    assert await balance_of(env, user) == 100
    invoice_id = json.loads(confirmed["content"]["data"])["invoice_id"]
    env.emulator.invoice_action(int(invoice_id), "refund")
    refund_id = await persisted_only(env, recorded(env)[-1])
    # Later this deployment stops accepting sandbox purchases and stops selling the product.
    catalog = {k: v for k, v in ctx.products.items() if k != "points_100"}
    today = replace(webhook_processor(ctx), products=catalog, policy=replace(ctx.purchase_policy, allow_sandbox=False))
    result = await today.process(refund_id)
    assert result.outcome == "processed"
    stored = await event(env, refund_id)
    assert stored["result"] == {"kind": "purchase", "invoice_id": str(invoice_id), "state": "refunded", "owned": True,
                                "credited_now": False}
    assert await balance_of(env, user) == 0 and (await wallet.verify_ledger(ctx.db)).ok


async def test_a_refunded_subscription_charge_takes_its_points_back_and_its_notification_says_how_many(emulated):
    env = await emulated()  # RuStore's notifications reach our webhook
    user = await env.api.register()
    sdk = await subscribe(env, user)
    await settle_all(env)
    assert await balance_of(env, user) == 300
    env.emulator.invoice_action(int(sdk["invoiceId"]), "refund")
    await settle_all(env)
    assert await balance_of(env, user) == 0
    stored = await stored_events(env)
    assert {e["status"] for e in stored} == {"processed"}
    results = [e["result"] for e in stored]
    assert {(r["kind"], r["purchase_id"], r["owned"]) for r in results} == {("subscription", sdk["purchaseId"], True)}
    assert sorted(r["points_granted"] for r in results) == [0] * (len(results) - 1) + [300]  # granted once
    refunded = [e["result"] for e in stored if e["event"].get("status_new") == "REFUNDED"]
    assert [r["points_clawed_back"] for r in refunded] == [300]
    assert sum(r["points_clawed_back"] for r in results) == 300
    assert (await wallet.verify_ledger(env.service.ctx.db)).ok


@pytest.mark.parametrize("outcome", ["processed", "failed", "dead"])
async def test_an_attempt_that_lost_its_claim_leaves_the_result_of_the_attempt_that_took_over(emulated, outcome):
    store = HookedClient()
    env = await emulated(mongo=store, webhooks=False)
    if outcome == "dead":
        env.emulator.add_product(env.app_id, EmulatorProduct("mystery_pack", "consumable", 4900))
        user = await env.api.register()
        env.buy("mystery_pack", app_user_id=user["userId"])
        note = recorded(env)[-1]
    else:
        user, note = await paid_purchase(env)
    if outcome == "failed":
        env.emulator.set_fault("payment_v2", "error")  # this lookup fails; RuStore itself answers
    event_id = await persisted_only(env, note)
    ctx = env.service.ctx
    gate, parked = asyncio.Event(), asyncio.Event()

    def park_first_result(collection: str, method: str):
        """Park the first attempt right before it records its result (after it applied the event)."""
        if (collection, method) == (events.COLLECTION, "update_one") and not parked.is_set():
            parked.set()
            return gate.wait()
    store.hook = park_first_result
    first = webhook_processor(ctx)
    slow = asyncio.create_task(first.process(event_id))
    await parked.wait()
    assert (await first.process(event_id)).outcome == "skipped"  # its claim still stands
    after_the_lease = replace(first, clock=lambda: ctx.now() + events.LEASE)  # the job, once the lease ran out
    assert (await after_the_lease.process(event_id)).outcome == outcome
    gate.set()
    assert (await slow).outcome == "skipped"  # its late result is not recorded
    stored = await event(env, event_id)
    assert (stored["status"], stored["attempts"]) == (outcome, 2)
    assert await balance_of(env, user) == (100 if outcome == "processed" else 0)
