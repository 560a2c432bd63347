"""Refunds of subscription charges end to end over HTTP with the RuStore emulator: webhook, refund-sweep, reconcile."""

from __future__ import annotations

from datetime import timedelta

import pytest
from bson import ObjectId

from documents import wallet
from documents.billing import PurchaseMismatch
from documents.subscriptions import verify_subscription
from jobs import find_job
from jobs.runner import run_job
from tests.handlers.test_subscriptions import MONTH, assert_ledger_clean, balance_of, run_reconcile, status_of, subscribe, verify


async def spend(env, user, amount: int, key: str) -> None:
    resp = await env.api.post("/api/points/spend", {"amount": amount}, token=user["accessToken"],
                              headers={"Idempotency-Key": key})
    assert resp.status == 200, resp.text


async def stored_periods(env, purchase_id: str) -> list[dict]:
    doc = await env.service.ctx.db.subscriptions.find_one({"purchase_id": purchase_id})
    return sorted(doc["granted_periods"], key=lambda p: p["end_date"])


async def clawbacks(env, user) -> list:
    entries = await wallet.list_entries(env.service.ctx.db, ObjectId(user["userId"]), limit=100)
    return [e for e in entries if e.type == "clawback"]


async def sweep(env) -> dict:
    outcome = await run_job(env.service.ctx, find_job("refund-sweep"))
    assert outcome.outcome == "ok", outcome.summary
    return outcome.summary


async def test_a_refunded_first_charge_takes_back_its_period_by_webhook_once_and_access_stays(emulated):
    env = await emulated()  # RuStore's notifications reach our webhook
    user = await env.api.register()
    sdk = await subscribe(env, user)
    await env.settle()
    assert (await verify(env, user, sdk)).json["balance"] == 300
    await env.advance(MONTH + timedelta(minutes=5))  # the renewal charge: a second invoice, a second period
    assert await balance_of(env, user) == 600
    await spend(env, user, 400, "before-the-refund")

    env.emulator.invoice_action(int(sdk["invoiceId"]), "refund")  # P7 of the first charge, from the console
    await env.settle()
    assert await balance_of(env, user) == 0  # 300 requested, 200 left: floored at zero
    first, second = await stored_periods(env, sdk["purchaseId"])
    (entry,) = await clawbacks(env, user)
    assert (entry.amount, entry.meta["requested"], entry.meta["shortfall"]) == (-200, 300, 100)
    assert entry.meta["corrects"] == first["entry_id"] and first["clawback_entry_id"] == entry.id
    assert first["invoice_id"] == sdk["invoiceId"] and second.get("clawback_entry_id") is None
    record = env.emulator.store.subscription(sdk["purchaseId"])
    assert second["invoice_id"] == str(record.invoice_ids[1])  # linked when its CONFIRMED notification came
    assert (await status_of(env, user))["status"] == "active"  # RuStore revokes nothing; neither do we
    notified = await env.service.ctx.db.webhook_events.find_one({"event.status_new": "REFUNDED"})
    assert (notified["status"], notified["result"]["points_clawed_back"]) == ("processed", 200)

    # Every other path seeing the same refund again takes nothing more.
    assert (await sweep(env))["points_clawed_back"] == 0
    assert (await run_reconcile(env))["points_clawed_back"] == 0
    again = await verify(env, user, sdk)
    # The current (second, renewed) period: what it granted and who credited it; nothing new; the wallet now.
    assert (again.status, again.json["pointsGranted"], again.json["creditedBy"], again.json["creditedNow"],
            again.json["balance"]) == (200, 300, "webhook", False, 0)
    assert len(await clawbacks(env, user)) == 1
    await assert_ledger_clean(env)


# Only the richer record names the renewal invoice's purchaseId; RuStore's published one does not, so
# without a notification the sweep cannot tie an unlinked renewal to its subscription (rustore/README.md).
@pytest.mark.parametrize("record_shape", ["rich"])
async def test_a_refunded_renewal_found_by_the_sweep_takes_back_only_its_period_and_may_go_negative(emulated,
                                                                                                   record_shape):
    env = await emulated(webhooks=False, clawback_allow_negative=True)  # no notification: only the sweep sees it
    user = await env.api.register()
    sdk = await subscribe(env, user)
    await verify(env, user, sdk)
    await env.advance(MONTH + timedelta(hours=1))
    assert (await run_reconcile(env))["points_granted"] == 300
    await spend(env, user, 500, "spent-most")
    renewal = env.emulator.store.subscription(sdk["purchaseId"]).invoice_ids[1]
    env.emulator.invoice_action(renewal, "refund")

    summary = await sweep(env)
    assert (summary["subscription_refunds"], summary["points_clawed_back"], summary["revoked"]) == (1, 300, 0)
    assert await balance_of(env, user) == -200
    first, second = await stored_periods(env, sdk["purchaseId"])
    (entry,) = await clawbacks(env, user)
    assert entry.meta["corrects"] == second["entry_id"] and second["invoice_id"] == str(renewal)
    assert first["invoice_id"] == sdk["invoiceId"] and first.get("clawback_entry_id") is None
    assert (await sweep(env))["subscription_refunds"] == 0  # recorded: the next sweep skips it
    assert (await run_reconcile(env))["points_clawed_back"] == 0
    assert len(await clawbacks(env, user)) == 1 and (await status_of(env, user))["status"] == "active"
    await assert_ledger_clean(env)


async def test_a_notified_charge_of_another_subscription_changes_nothing(emulated):
    # A notification naming subscription A with the invoice of subscription B's charge (RuStore's
    # P3 answer over HTTP from the emulator shows B's purchaseId): refused, nothing taken back.
    env = await emulated(webhooks=False)
    user = await env.api.register()
    first, other = await subscribe(env, user), await subscribe(env, user, "premium_yearly")
    for sdk in (first, other):
        assert (await verify(env, user, sdk)).status == 200
    assert await balance_of(env, user) == 4300
    env.emulator.invoice_action(int(other["invoiceId"]), "refund")
    ctx = env.service.ctx

    async def notified(invoice_id: str):
        return await verify_subscription(
            ctx.db, ctx.rustore, first["purchaseId"], "premium_monthly", sandbox=False, claim=None,
            products=ctx.products, policy=ctx.purchase_policy, now=ctx.clock(), source="webhook",
            invoice_id=invoice_id)

    with pytest.raises(PurchaseMismatch):
        await notified(other["invoiceId"])
    assert await balance_of(env, user) == 4300 and await clawbacks(env, user) == []
    doc = await ctx.db.subscriptions.find_one({"purchase_id": first["purchaseId"]})
    assert not doc.get("refunds")
    env.emulator.invoice_action(int(first["invoiceId"]), "refund")
    done = await notified(first["invoiceId"])
    assert (done.points_clawed_back, done.balance) == (300, 4000)
    assert done.subscription["refunds"][0]["invoice_id"] == first["invoiceId"]
    await assert_ledger_clean(env)
