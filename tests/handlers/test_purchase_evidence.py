"""Against RuStore's published minimum (no purchaseId in P3): the purchaseId comes from evidence, ownership needs proof.

The emulator answers P3 exactly as RuStore's `InvoicePaymentDto`. Notifications are recorded by the
emulator and replayed to our webhook when a test wants them to arrive, so their timing is the test's.
"""

from __future__ import annotations

import asyncio
import json
import uuid

from documents import purchases
from jobs import find_job
from jobs.runner import run_job
from tests.faults.support import outage
from tests.handlers.test_conventions import assert_error_shape
from tests.handlers.test_payments import assert_ledger_clean, balance_of, verify_body
from tests.handlers.test_webhooks import post_webhook, recorded, replay

BREAKER = {"rustore_timeout_s": 0.2, "rustore_retry_deadline_s": 0.4, "rustore_breaker_threshold": 2,
           "rustore_breaker_reset_s": 0.3}


async def order_for(env, user, product_id: str = "points_100") -> dict:
    resp = await env.api.post("/api/payments/orders", {"productId": product_id}, token=user["accessToken"])
    assert resp.status == 201, resp.text
    return resp.json


def buy_ordered(env, order: dict, **params) -> dict:
    """The app passes orderId and developerPayload (not appUserId: no purchase-list evidence)."""
    return env.buy(order["productId"], order_id=order["orderId"], developer_payload=order["developerPayload"],
                   **params)


async def deliver(env, invoice_id: str) -> None:
    """RuStore's INVOICE_STATUS notifications for this invoice reach our webhook (then are processed)."""
    for note in recorded(env):
        if json.loads(note["content"]["data"]).get("invoice_id") == str(invoice_id):
            resp = await post_webhook(env, replay(env, note))
            assert resp.status == 200, resp.text
    await env.settle()


async def stored(env, sdk: dict) -> dict:
    return await purchases.find_purchase(env.service.ctx.db, sdk["invoiceId"], False)


def status_at_rustore(env, sdk: dict) -> str:
    return env.emulator.store.invoice(int(sdk["invoiceId"])).status


async def claim_while_the_breaker_opens(env, thief, sdk: dict) -> None:
    """RuStore fails; the thief claims the invoice with a guessed purchaseId and, by failing on a second
    purchase too, opens our breaker (as any signed-in user could)."""
    outage(env, "http_503")
    decoy = env.buy("points_500")
    for target in (sdk, decoy):
        resp = await env.api.post("/api/payments/verify", verify_body(target, purchaseId=str(uuid.uuid4())),
                                  token=thief["accessToken"])
        assert_error_shape(resp, 503, "rustore_unavailable")
    assert env.service.ctx.rustore.breaker_state == "open"


async def test_rustore_record_has_no_purchase_id_in_the_default_shape(emulated):
    env = await emulated(webhooks=False)
    sdk = env.buy("points_100", purchase_type="TWO_STEP")
    payment = await env.service.ctx.rustore.get_payment(sdk["invoiceId"])
    assert payment.purchase_id is None and payment.product_id == "points_100"
    assert payment.status_raw == "paid" and payment.app_id == env.app_id
    assert "purchaseId" not in payment.raw and "applicationCode" in payment.raw


async def test_two_step_with_the_sdk_purchase_id_is_credited_and_confirmed_exactly_once(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    sdk = buy_ordered(env, await order_for(env, user), purchase_type="TWO_STEP")
    resp = await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])
    assert resp.status == 200 and resp.json["status"] == "credited", resp.text
    assert resp.json["purchase"]["status"] == "confirmed" and resp.json["balance"] == 100
    assert status_at_rustore(env, sdk) == "CONFIRMED"
    again = await env.api.post("/api/payments/verify", verify_body(sdk), token=user["accessToken"])
    assert again.status == 200 and again.json["status"] == "already_credited"
    await env.advance(10 * 60)
    await run_job(env.service.ctx, find_job("purchase-reconcile"))
    assert env.emulator.stats["purchase_confirm"] == 1
    doc = await stored(env, sdk)
    assert (doc["purchase_id"], doc["purchase_id_source"]) == (sdk["purchaseId"], "claim")
    assert await balance_of(env, user) == 100
    await assert_ledger_clean(env)


async def test_without_the_sdk_purchase_id_the_notification_completes_the_confirmation(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    sdk = buy_ordered(env, await order_for(env, user), purchase_type="TWO_STEP")
    body = {k: v for k, v in verify_body(sdk).items() if k != "purchaseId"}
    resp = await env.api.post("/api/payments/verify", body, token=user["accessToken"])
    assert resp.status == 200 and resp.json["status"] == "credited", resp.text
    assert resp.json["purchase"]["status"] == "paid"  # credited; nothing to confirm with yet
    assert status_at_rustore(env, sdk) == "PAID" and env.emulator.stats["purchase_confirm"] == 0
    await deliver(env, sdk["invoiceId"])
    assert status_at_rustore(env, sdk) == "CONFIRMED" and env.emulator.stats["purchase_confirm"] == 1
    doc = await stored(env, sdk)
    assert (doc["state"], doc["purchase_id_source"]) == ("confirmed", "notification")
    assert await balance_of(env, user) == 100
    await assert_ledger_clean(env)


async def test_a_purchase_id_rustore_does_not_know_is_marked_wrong_and_replaced_by_the_notifications(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    sdk = buy_ordered(env, await order_for(env, user), purchase_type="TWO_STEP")
    bogus = str(uuid.uuid4())
    resp = await env.api.post("/api/payments/verify", verify_body(sdk, purchaseId=bogus), token=user["accessToken"])
    assert resp.status == 200 and resp.json["purchase"]["status"] == "paid", resp.text
    assert (await stored(env, sdk))["wrong_purchase_ids"] == [bogus]
    await deliver(env, sdk["invoiceId"])
    assert status_at_rustore(env, sdk) == "CONFIRMED"
    doc = await stored(env, sdk)
    assert (doc["purchase_id"], doc["purchase_id_source"]) == (sdk["purchaseId"], "notification")
    assert await balance_of(env, user) == 100


async def test_a_wrong_client_purchase_id_never_confirms_someone_elses_hold(emulated):
    env = await emulated(webhooks=False)
    buyer = await env.api.register()
    theirs = env.buy("points_500", purchase_type="TWO_STEP")  # another person's order-less hold
    await deliver(env, theirs["invoiceId"])  # we learn its purchaseId; nobody has claimed it
    mine = buy_ordered(env, await order_for(env, buyer), purchase_type="TWO_STEP")
    resp = await env.api.post("/api/payments/verify", verify_body(mine, purchaseId=theirs["purchaseId"]),
                              token=buyer["accessToken"])
    assert resp.status == 200 and resp.json["purchase"]["status"] == "paid", resp.text
    assert status_at_rustore(env, theirs) == "PAID" and env.emulator.stats["purchase_confirm"] == 0
    await deliver(env, mine["invoiceId"])
    assert status_at_rustore(env, mine) == "CONFIRMED" and status_at_rustore(env, theirs) == "PAID"
    doc = await stored(env, mine)
    assert doc["purchase_id"] == mine["purchaseId"] and theirs["purchaseId"] in doc["wrong_purchase_ids"]
    assert await balance_of(env, buyer) == 100
    await assert_ledger_clean(env)


async def test_another_account_never_takes_an_orderless_purchase_and_the_buyer_proving_possession_does(emulated):
    env = await emulated(webhooks=False)
    buyer, thief = await env.api.register(), await env.api.register()
    sdk = env.buy("points_100")  # no order, no appUserId: only the purchaseId can prove whose it is
    guessed = await env.api.post("/api/payments/verify", verify_body(sdk, purchaseId=str(uuid.uuid4())),
                                 token=thief["accessToken"])
    assert guessed.status == 202 and guessed.json["status"] == "pending", guessed.text
    assert guessed.json["purchase"]["purchaseId"] != sdk["purchaseId"]  # nothing learned leaks to a claimant
    bare = {k: v for k, v in verify_body(sdk).items() if k != "purchaseId"}
    assert (await env.api.post("/api/payments/verify", bare, token=thief["accessToken"])).status == 202
    first = await env.api.post("/api/payments/verify", verify_body(sdk), token=buyer["accessToken"])
    assert first.status == 202  # RuStore has not reported a purchaseId for it yet
    await deliver(env, sdk["invoiceId"])  # the notification's purchase_id matches the buyer's claim
    assert await balance_of(env, buyer) == 100 and await balance_of(env, thief) == 0
    mine = await env.api.post("/api/payments/verify", verify_body(sdk), token=buyer["accessToken"])
    assert mine.status == 200 and mine.json["status"] == "already_credited"
    late = await env.api.post("/api/payments/verify", verify_body(sdk), token=thief["accessToken"])
    assert_error_shape(late, 409, "purchase_belongs_to_another_user")
    assert await balance_of(env, thief) == 0
    await assert_ledger_clean(env)


async def test_the_purchase_list_by_app_user_id_proves_ownership_and_gives_the_purchase_id(emulated):
    env = await emulated(webhooks=False)
    buyer, thief = await env.api.register(), await env.api.register()
    sdk = env.buy("points_100", user=buyer, purchase_type="TWO_STEP")  # appUserId passed, no order
    stolen = await env.api.post("/api/payments/verify", verify_body(sdk), token=thief["accessToken"])
    assert stolen.status == 202  # the thief's purchase list does not contain it
    body = {k: v for k, v in verify_body(sdk).items() if k != "purchaseId"}
    resp = await env.api.post("/api/payments/verify", body, token=buyer["accessToken"])
    assert resp.status == 200 and resp.json["purchase"]["status"] == "confirmed", resp.text
    doc = await stored(env, sdk)
    assert (doc["user_id"] is not None, doc["purchase_id_source"]) == (True, "purchase_list")
    assert await balance_of(env, buyer) == 100 and await balance_of(env, thief) == 0


async def test_claims_during_an_outage_are_stored_whole_and_only_the_real_buyer_is_credited(emulated):
    env = await emulated(webhooks=False, **BREAKER)
    buyer, thief = await env.api.register(), await env.api.register()
    sdk = env.buy("points_100")
    await deliver(env, sdk["invoiceId"])  # RuStore told us its purchaseId before the outage
    await claim_while_the_breaker_opens(env, thief, sdk)
    resp = await env.api.post("/api/payments/verify", verify_body(sdk), token=buyer["accessToken"])
    assert_error_shape(resp, 503, "rustore_unavailable")
    doc = await stored(env, sdk)
    assert doc["user_id"] is None and len({c["user_id"] for c in doc["claims"]}) == 2  # both kept, none bound
    env.emulator.clear_faults()
    await asyncio.sleep(0.4)
    await env.advance(60)
    outcome = await run_job(env.service.ctx, find_job("purchase-reconcile"))
    assert outcome.outcome == "ok", outcome
    assert await balance_of(env, buyer) == 100 and await balance_of(env, thief) == 0
    await assert_ledger_clean(env)


async def test_an_outage_claim_by_another_account_binds_nothing_without_evidence(emulated):
    env = await emulated(webhooks=False, **BREAKER)
    thief = await env.api.register()
    sdk = env.buy("points_100")
    await claim_while_the_breaker_opens(env, thief, sdk)
    env.emulator.clear_faults()
    await asyncio.sleep(0.4)
    await env.advance(60)
    await run_job(env.service.ctx, find_job("purchase-reconcile"))
    await deliver(env, sdk["invoiceId"])
    doc = await stored(env, sdk)
    assert doc["user_id"] is None and doc.get("credit_entry_id") is None
    assert await balance_of(env, thief) == 0


async def test_holds_unconfirmed_for_over_3_hours_raise_the_metric(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    sdk = buy_ordered(env, await order_for(env, user), purchase_type="TWO_STEP")
    body = {k: v for k, v in verify_body(sdk).items() if k != "purchaseId"}
    assert (await env.api.post("/api/payments/verify", body, token=user["accessToken"])).status == 200
    await env.advance(3 * 3600 + 60)
    outcome = await run_job(env.service.ctx, find_job("purchase-reconcile"))
    assert outcome.summary["holds_unconfirmed_over_3h"] == 1
    await deliver(env, sdk["invoiceId"])
    outcome = await run_job(env.service.ctx, find_job("purchase-reconcile"))
    assert outcome.summary["holds_unconfirmed_over_3h"] == 0 and status_at_rustore(env, sdk) == "CONFIRMED"


async def test_a_transient_404_on_confirm_never_strands_a_hold_confirmed_with_rustores_own_purchase_id(emulated):
    env = await emulated()
    user = await env.api.register()
    ordered = (await env.api.post("/api/payments/orders", {"productId": "points_100"}, token=user["accessToken"])).json
    env.emulator.set_fault("purchase_confirm", "error", status=404, count=1)  # one gateway 404, then RuStore is fine
    sdk = env.buy("points_100", order_id=ordered["orderId"], developer_payload=ordered["developerPayload"],
                  app_user_id=user["userId"], purchase_type="TWO_STEP")
    await env.settle()  # the notification credits and tries to confirm: the 404, then the next check
    await env.advance(5 * 60)
    await run_job(env.service.ctx, find_job("purchase-reconcile"))
    # The 404 was used up by a confirm, and a later confirm went through.
    assert env.emulator.faults.list() == [] and env.emulator.stats["purchase_confirm"] >= 2
    assert env.emulator.store.invoice(int(sdk["invoiceId"])).status == "CONFIRMED"
    doc = await env.service.ctx.db["purchases"].find_one({"invoice_id": sdk["invoiceId"]})
    assert sdk["purchaseId"] not in (doc.get("wrong_purchase_ids") or [])
    assert (await env.api.get("/api/points/balance", token=user["accessToken"])).json["balance"] == 100


async def test_a_refused_claim_on_someone_elses_purchase_writes_nothing(emulated):
    env = await emulated(webhooks=False)
    owner, intruder = await env.api.register(), await env.api.register()
    sdk = await env.order_and_buy(owner, "points_100")  # the owner has not verified yet
    stolen = await env.api.post("/api/payments/verify", verify_body(sdk), token=intruder["accessToken"])
    assert_error_shape(stolen, 409, "purchase_belongs_to_another_user")
    doc = await env.service.ctx.db["purchases"].find_one({"invoice_id": sdk["invoiceId"]})
    assert not doc.get("claims")  # the refused claim is not kept (claims are capped: it could push out real ones)
    assert (await env.api.post("/api/payments/verify", verify_body(sdk), token=owner["accessToken"])).status == 200
