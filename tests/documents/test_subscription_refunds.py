"""Refunded subscription charges: exactly the period the charge paid for is clawed back, once, whatever races or dies.

The store yields at every round trip (tests.support.yielding), so concurrent paths interleave the way
they do against a real server; hooks park one path or kill it at a precise call.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId
from mongomock_motor import AsyncMongoMockClient

from core.products import Product
from documents.billing import Claim, PurchasePolicy
from documents.billing import orders as orders
from documents.subscriptions import store as subscriptions
from documents.subscriptions.apply import apply_subscription
from documents.subscriptions.refunds import apply_charge, clawback_key, settle_due, settle_refunds
from documents.subscriptions.store import grant_key
from documents.wallet import ledger as ledger
from rustore import InvoiceStatus, Payment, Subscription, SubscriptionStatus
from tests.support.barrier import Barrier
from tests.support.yielding import YieldingDatabase

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MONTH = timedelta(days=30)
PRODUCTS = {"premium_monthly": Product(id="premium_monthly", type="subscription", title="Premium", description="",
                                       plan="monthly", period_days=30, points_per_period=300)}
FLOOR = PurchasePolicy(app_id=None, allow_sandbox=False)
NEGATIVE = replace(FLOOR, allow_negative_clawback=True)
PERIOD_1, PERIOD_2 = grant_key("p1", False, T0 + MONTH), grant_key("p1", False, T0 + 2 * MONTH)


def answer(period: int, order_id: str | None = None) -> Subscription:
    """RuStore's V4 answer while the `period`-th paid period runs (orderId as RuStore shows it, or absent)."""
    return Subscription(product_id="premium_monthly", purchase_id="p1", status=SubscriptionStatus.ACTIVE, start_time=T0,
                        expiry_time=T0 + period * MONTH, auto_renewing=True, payment_state=1, cancel_reason=None,
                        acknowledged=True, developer_payload=None, app_user_id=None, order_id=order_id, price=29900,
                        currency="RUB", sandbox=False)


def charge(invoice_id: str, paid: datetime, status: InvoiceStatus = InvoiceStatus.CONFIRMED, *,
           amount: int = 29900, purchase_id: str = "p1") -> Payment:
    """RuStore's P3/P4 record of one charge of subscription p1."""
    return Payment(invoice_id=invoice_id, status=status, status_raw=status.value, purchase_id=purchase_id,
                   order_id=None, app_id=None, product_id="premium_monthly", amount=amount, currency="RUB", quantity=1,
                   developer_payload=None, app_user_id=None, invoice_date=paid, payment_date=paid,
                   refund_date=None if status is InvoiceStatus.CONFIRMED else paid + timedelta(days=2), sandbox=False)


def refund(invoice_id: str, paid: datetime, **kwargs) -> Payment:
    return charge(invoice_id, paid, InvoiceStatus.REFUNDED, **kwargs)


@pytest.fixture
async def db() -> YieldingDatabase:
    wrapped = YieldingDatabase(AsyncMongoMockClient(tz_aware=True)["subscription_refunds_test"])
    for module in (ledger, orders, subscriptions):
        for name, models in module.INDEXES.items():
            await wrapped[name].create_indexes(models)
    return wrapped


@pytest.fixture
async def user_id(db: YieldingDatabase) -> ObjectId:
    uid = ObjectId()
    await db.users.insert_one({"_id": uid, "email": f"{uid}@example.com", "created_at": T0,
                               "points": ledger.new_wallet(T0), "subscription": None})
    return uid


async def grant(db, user_id, period: int, order_id: str | None = None, policy: PurchasePolicy = FLOOR):
    """Apply the answer showing the paid period, as verify, a webhook or the job would."""
    now = T0 + (period - 1) * MONTH + timedelta(minutes=5)
    return await apply_subscription(db, answer(period, order_id), claim=Claim(user_id=user_id, product_id="premium_monthly"),
                                    products=PRODUCTS, policy=policy, now=now, source="verify")


async def sub_id(db) -> ObjectId:
    return (await subscriptions.find_subscription(db, "p1", False))["_id"]


async def take_back(db, payment: Payment, policy: PurchasePolicy = FLOOR, source: str = "webhook") -> tuple[int, int | None]:
    return await apply_charge(db, await sub_id(db), payment, policy=policy, now=T0 + MONTH + timedelta(days=3),
                              source=source)


async def balance(db, user_id) -> int:
    return (await ledger.get_balance(db, user_id)).balance


async def clawbacks(db, user_id) -> list:
    return [e for e in await ledger.list_entries(db, user_id, limit=100) if e.type == "clawback"]


async def spend(db, user_id, amount: int, key: str) -> None:
    await ledger.debit(db, user_id, amount, "spend", key)


@pytest.mark.parametrize("policy,final_balance,shortfall", [(FLOOR, 0, 250), (NEGATIVE, -250, 0)])
async def test_refund_of_the_first_charge_claws_back_exactly_its_period_once(db, user_id, policy, final_balance,
                                                                              shortfall):
    await grant(db, user_id, 1, order_id="100001")  # a bare orderId names the charge: the first invoice
    await grant(db, user_id, 2, order_id="100001..1")  # `..1` names no invoice
    assert await take_back(db, charge("100002", T0 + MONTH)) == (0, None)  # the renewal's CONFIRMED notification links it
    await spend(db, user_id, 550, "spent-it")
    assert await balance(db, user_id) == 50

    taken, after = await take_back(db, refund("100001", T0), policy)
    assert (taken, after) == (300 - shortfall, final_balance)
    doc = await subscriptions.find_subscription(db, "p1", False)
    first, second = sorted(doc["granted_periods"], key=lambda p: p["end_date"])
    (entry,) = await clawbacks(db, user_id)
    assert entry.idempotency_key == clawback_key(PERIOD_1) == "subgrant-clawback:p1:" + PERIOD_1.rsplit(":", 1)[1]
    assert entry.meta["corrects"] == first["entry_id"] and entry.meta["requested"] == 300
    assert entry.meta["shortfall"] == shortfall and entry.meta["invoice_id"] == "100001"
    assert (first["invoice_id"], first["order_id"], first["clawback_entry_id"], first["refund_status"]) == (
        "100001", "100001", entry.id, "REFUNDED")
    assert (second["invoice_id"], second["order_id"], second.get("clawback_entry_id")) == ("100002", "100001..1", None)
    assert [(r["invoice_id"], r["period_key"], r["clawback_entry_id"]) for r in doc["refunds"]] == [
        ("100001", PERIOD_1, entry.id)]
    assert "refund_due_at" not in doc
    # RuStore revokes nothing on a refund and still reports the subscription active: so does the user's copy.
    assert doc["status"] == "ACTIVE" and (await subscriptions.find_current(db, user_id))["status"] == "ACTIVE"

    # The webhook redelivered, the sweep, the job and RuStore's answers seen again: nothing more is taken.
    assert await take_back(db, refund("100001", T0), policy, source="refund-sweep") == (0, None)
    assert (await grant(db, user_id, 2, order_id="100001..1", policy=policy)).points_clawed_back == 0
    assert await settle_due(db, policy, T0 + 2 * MONTH, 10) == (0, 0)
    assert len(await clawbacks(db, user_id)) == 1 and await balance(db, user_id) == final_balance
    assert (await ledger.verify_ledger(db)).ok


async def test_without_links_a_charge_matches_the_first_period_ending_after_its_payment(db, user_id):
    await grant(db, user_id, 1)
    await grant(db, user_id, 2)
    await take_back(db, charge("100000", T0 - timedelta(minutes=1), amount=0))  # a free trial's invoice: no period
    assert await take_back(db, refund("100000", T0, amount=0)) == (0, None)
    # RuStore charges the renewal when period 1 ends: that payment bought period 2, not period 1.
    assert await take_back(db, refund("100002", T0 + MONTH)) == (300, 300)
    assert await take_back(db, refund("100001", T0)) == (300, 0)
    doc = await subscriptions.find_subscription(db, "p1", False)
    assert {p["key"]: p["invoice_id"] for p in doc["granted_periods"]} == {PERIOD_1: "100001", PERIOD_2: "100002"}
    assert {e.meta["corrects"] for e in await clawbacks(db, user_id)} == {p["entry_id"] for p in doc["granted_periods"]}
    assert [r["invoice_id"] for r in doc["refunds"]] == ["100002", "100001"]
    assert (await ledger.verify_ledger(db)).ok


async def test_a_refund_of_a_charge_whose_period_is_not_granted_yet_is_taken_back_when_it_is(db, user_id):
    await grant(db, user_id, 1)
    assert await take_back(db, refund("100002", T0 + MONTH)) == (0, None)  # period 2 not granted yet: recorded
    outcome = await grant(db, user_id, 2)
    assert (outcome.points_granted, outcome.points_clawed_back, outcome.balance) == (300, 300, 300)
    assert await balance(db, user_id) == 300 and len(await clawbacks(db, user_id)) == 1
    assert (await ledger.verify_ledger(db)).ok


async def test_paths_applying_one_refund_at_once_take_back_once(db, user_id):
    await grant(db, user_id, 1)
    racing = db.with_hook(barrier := Barrier(3, "subscriptions", "update_one"))  # the three refunds record it at once
    results = await asyncio.gather(*(take_back(racing, refund("100001", T0), source=s)
                                     for s in ("webhook", "refund-sweep", "webhook")),
                                   grant(racing, user_id, 1))
    assert barrier.met
    assert sum(r[0] for r in results[:3]) + results[3].points_clawed_back == 300
    assert await balance(db, user_id) == 0 and len(await clawbacks(db, user_id)) == 1
    assert len((await subscriptions.find_subscription(db, "p1", False))["refunds"]) == 1
    assert (await ledger.verify_ledger(db)).ok


@pytest.mark.parametrize("park_at", [("subscriptions", "update_one"), ("transactions", "find_one")],
                         ids=["before-recording-the-period", "before-crediting"])
async def test_a_refund_racing_the_grant_of_its_period_is_never_lost(db, user_id, park_at):
    """The grant is parked, the refund runs to the end, then the grant finishes: one of them takes it back."""
    await apply_subscription(db, replace(answer(1), status=SubscriptionStatus.PENDING, expiry_time=None, payment_state=0),
                             claim=Claim(user_id=user_id, product_id="premium_monthly"), products=PRODUCTS,
                             policy=FLOOR, now=T0, source="verify")
    gate, parked, armed = asyncio.Event(), asyncio.Event(), {"on": True}

    def park(collection: str, method: str):
        if armed["on"] and (collection, method) == park_at:
            armed["on"] = False
            parked.set()
            return gate.wait()
    granting = asyncio.create_task(grant(db.with_hook(park), user_id, 1))
    await asyncio.wait_for(parked.wait(), 5)
    assert await take_back(db, refund("100001", T0)) == (0, None)  # nothing credited to take back yet
    assert not granting.done()  # the grant was held at its park point while the refund ran
    gate.set()
    outcome = await granting
    assert (outcome.points_granted, outcome.points_clawed_back) == (300, 300)
    assert await balance(db, user_id) == 0 and len(await clawbacks(db, user_id)) == 1
    assert (await ledger.verify_ledger(db)).ok


async def test_a_grant_racing_a_refund_that_is_recorded_but_not_yet_looking_is_taken_back_once(db, user_id):
    await grant(db, user_id, 1)
    gate, parked, armed = asyncio.Event(), asyncio.Event(), {"on": False}

    def park_after_recording(collection: str, method: str):
        if (collection, method) == ("subscriptions", "update_one"):
            armed["on"] = True  # the refund is written; park its first look at the periods
        elif armed["on"] and (collection, method) == ("subscriptions", "find_one"):
            armed["on"] = False
            parked.set()
            return gate.wait()
    refunding = asyncio.create_task(take_back(db.with_hook(park_after_recording), refund("100002", T0 + MONTH)))
    await asyncio.wait_for(parked.wait(), 5)
    assert (await grant(db, user_id, 2)).points_clawed_back == 300  # the grant re-reads and finds the refund
    assert not refunding.done()  # the refund was held after recording while the grant ran
    gate.set()
    assert await refunding == (0, None)
    assert await balance(db, user_id) == 300 and len(await clawbacks(db, user_id)) == 1
    assert (await ledger.verify_ledger(db)).ok


@pytest.mark.parametrize("die_at,nth", [(("transactions", "find_one"), 1), (("subscriptions", "update_one"), 3)],
                         ids=["before-the-clawback", "before-recording-the-clawback"])
@pytest.mark.parametrize("next_look", ["job", "webhook-retry"])
async def test_a_refund_whose_process_died_is_finished_by_the_next_look(db, user_id, die_at, nth, next_look):
    await grant(db, user_id, 1)
    calls = {"n": 0}

    def die(collection: str, method: str):
        if (collection, method) == die_at:
            calls["n"] += 1
            if calls["n"] == nth:
                raise ConnectionError("process died after recording the refund")
    with pytest.raises(ConnectionError):
        await take_back(db.with_hook(die), refund("100001", T0))
    doc = await subscriptions.find_subscription(db, "p1", False)
    assert [r["invoice_id"] for r in doc["refunds"]] == ["100001"] and doc["refund_due_at"] is not None
    later = T0 + MONTH + timedelta(days=4)
    if next_look == "job":  # subscription-reconcile, without asking RuStore
        assert await settle_due(db, FLOOR, later, 10) == (1, 300 if nth == 1 else 0)
    else:
        await take_back(db, refund("100001", T0))
    doc = await subscriptions.find_subscription(db, "p1", False)
    assert "refund_due_at" not in doc and doc["refunds"][0]["clawback_entry_id"] is not None
    assert doc["granted_periods"][0]["clawback_entry_id"] == doc["refunds"][0]["clawback_entry_id"]
    assert await settle_due(db, FLOOR, later, 10) == (0, 0)
    assert await balance(db, user_id) == 0 and len(await clawbacks(db, user_id)) == 1
    assert (await ledger.verify_ledger(db)).ok


# --- Matching and settling in the cases the first tests did not reach (issue #20: subscription_refunds survivors) ---

async def test_a_confirmed_charge_only_links_its_period_and_takes_nothing(db, user_id):
    await grant(db, user_id, 1)
    assert await take_back(db, charge("100001", T0)) == (0, None)
    doc = await subscriptions.find_subscription(db, "p1", False)
    assert doc["granted_periods"][0]["invoice_id"] == "100001" and doc.get("refunds") is None
    assert await balance(db, user_id) == 300


async def test_a_charge_is_matched_by_when_it_was_paid_not_when_its_invoice_was_issued(db, user_id):
    await grant(db, user_id, 1)
    await grant(db, user_id, 2)
    # The renewal invoice is issued an hour before period 1 ends and paid an hour after: it bought period 2.
    late = replace(refund("100002", T0 + MONTH + timedelta(hours=1)), invoice_date=T0 + MONTH - timedelta(hours=1))
    assert await take_back(db, late) == (300, 300)
    # Without a payment date the invoice date is what dates the charge.
    undated = replace(refund("100001", T0), payment_date=None)
    assert await take_back(db, undated) == (300, 0)
    doc = await subscriptions.find_subscription(db, "p1", False)
    assert {p["key"]: p["invoice_id"] for p in doc["granted_periods"]} == {PERIOD_1: "100001", PERIOD_2: "100002"}
    assert [(r["invoice_id"], r["period_key"], r["paid_at"]) for r in doc["refunds"]] == [
        ("100002", PERIOD_2, T0 + MONTH + timedelta(hours=1)), ("100001", PERIOD_1, T0)]
    assert (await ledger.verify_ledger(db)).ok


async def test_each_taken_back_period_records_the_refund_that_took_it(db, user_id):
    await grant(db, user_id, 1)
    await take_back(db, refund("100001", T0))
    doc = await subscriptions.find_subscription(db, "p1", False)
    (period,), (recorded,) = doc["granted_periods"], doc["refunds"]
    assert (period["refunded_at"], period["refund_status"]) == (T0 + MONTH + timedelta(days=3), "REFUNDED")
    assert recorded["recorded_at"] == period["refunded_at"] and recorded["source"] == "webhook"


async def test_a_refund_on_one_subscription_leaves_the_users_other_subscriptions_alone(db, user_id):
    claim = Claim(user_id=user_id, product_id="premium_monthly")
    other = replace(answer(1), purchase_id="p0")
    await apply_subscription(db, other, claim=claim, products=PRODUCTS, policy=FLOOR, now=T0, source="verify")
    await grant(db, user_id, 1)
    p0 = (await subscriptions.find_subscription(db, "p0", False))["_id"]
    assert await apply_charge(db, p0, refund("900001", T0, purchase_id="p0"), policy=FLOOR, now=T0 + timedelta(days=1),
                              source="webhook") == (300, 300)
    assert await take_back(db, refund("100001", T0)) == (300, 0)
    first = await subscriptions.find_subscription(db, "p0", False)
    second = await subscriptions.find_subscription(db, "p1", False)
    assert [r["invoice_id"] for r in first["refunds"]] == ["900001"]
    assert [r["invoice_id"] for r in second["refunds"]] == ["100001"]
    assert "refund_due_at" not in first and "refund_due_at" not in second
    assert first["granted_periods"][0]["invoice_id"] == "900001"
    assert second["granted_periods"][0]["invoice_id"] == "100001"
    assert await balance(db, user_id) == 0 and len(await clawbacks(db, user_id)) == 2


async def test_settling_a_subscription_that_no_longer_exists_takes_nothing(db, user_id):
    assert await settle_refunds(db, ObjectId(), FLOOR, T0) == (0, None)


async def test_a_refund_recorded_before_the_subscription_has_an_owner_is_taken_back_by_its_first_grant(db, user_id):
    await apply_subscription(db, answer(1), claim=None, products=PRODUCTS, policy=FLOOR, now=T0, source="webhook")
    assert await take_back(db, refund("100001", T0)) == (0, None)  # nobody owns it: nothing granted to take back
    doc = await subscriptions.find_subscription(db, "p1", False)
    assert doc["user_id"] is None and [r["invoice_id"] for r in doc["refunds"]] == ["100001"]
    outcome = await grant(db, user_id, 1)
    assert (outcome.points_granted, outcome.points_clawed_back, outcome.balance) == (300, 300, 0)
    assert await balance(db, user_id) == 0 and len(await clawbacks(db, user_id)) == 1


async def test_a_grant_whose_entry_a_crash_left_in_the_outbox_is_still_taken_back(db, user_id):
    def die_before_the_entry(collection: str, method: str):
        if (collection, method) == ("transactions", "insert_one"):
            raise ConnectionError("process died before writing the grant's entry")
    with pytest.raises(ConnectionError):
        await grant(db.with_hook(die_before_the_entry), user_id, 1)
    assert await balance(db, user_id) == 300  # applied: the entry waits in the wallet's outbox
    assert await take_back(db, refund("100001", T0)) == (300, 0)
    assert len(await clawbacks(db, user_id)) == 1 and (await ledger.verify_ledger(db)).ok


async def test_a_refund_whose_period_another_charge_linked_meanwhile_stays_due_and_is_matched_again(db, user_id):
    await grant(db, user_id, 1)
    await grant(db, user_id, 2)
    gate, parked, calls = asyncio.Event(), asyncio.Event(), {"n": 0}

    def park_the_link(collection: str, method: str):
        """Park the refund right before it links its matched period (its second subscriptions.update_one)."""
        if (collection, method) == ("subscriptions", "update_one"):
            calls["n"] += 1
            if calls["n"] == 2:
                parked.set()
                return gate.wait()
    refunding = asyncio.create_task(take_back(db.with_hook(park_the_link), refund("100009", T0)))
    await parked.wait()
    await take_back(db, charge("100001", T0 - timedelta(minutes=1)))  # the first charge links period 1 first
    gate.set()
    assert await refunding == (0, None)  # its period was taken: nothing taken back yet, the refund stays due
    doc = await subscriptions.find_subscription(db, "p1", False)
    assert doc["refund_due_at"] is not None and doc["refunds"][0]["clawback_entry_id"] is None
    assert await settle_due(db, FLOOR, T0 + MONTH + timedelta(days=4), 10) == (1, 300)  # matched again: period 2
    doc = await subscriptions.find_subscription(db, "p1", False)
    assert {p["key"]: p["invoice_id"] for p in doc["granted_periods"]} == {PERIOD_1: "100001", PERIOD_2: "100009"}
    assert "refund_due_at" not in doc and await balance(db, user_id) == 300
