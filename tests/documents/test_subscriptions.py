"""Applying RuStore's subscription answers: forward-only ordering, exactly-once period grants, the user's copy.

The store yields at every round trip (tests.support.yielding), so concurrent applies interleave the
way they do against a real server.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId
from mongomock_motor import AsyncMongoMockClient

from core.products import Product
from documents.billing import Claim, PurchasePolicy
from documents.billing import orders as orders
from documents.subscriptions import store as subscriptions
from documents.subscriptions.apply import apply_subscription, record_claim
from documents.subscriptions.store import display_status, grant_key, next_check
from documents.wallet import ledger as ledger
from rustore import Subscription, SubscriptionStatus
from tests.support.barrier import Barrier
from tests.support.yielding import YieldingDatabase

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MONTH = timedelta(days=30)
PRODUCTS = {"premium_monthly": Product(id="premium_monthly", type="subscription", title="Premium", description="",
                                       plan="monthly", period_days=30, points_per_period=300)}
POLICY = PurchasePolicy(app_id=None, allow_sandbox=False)


def answer(purchase_id: str, status: str = "ACTIVE", *, end: datetime | None = T0 + MONTH, payment_state: int = 1,
           auto_renewing: bool = True) -> Subscription:
    """What the RuStore client would return for a V4 lookup."""
    return Subscription(product_id="premium_monthly", purchase_id=purchase_id, status=SubscriptionStatus(status),
                        start_time=T0, expiry_time=end, auto_renewing=auto_renewing, payment_state=payment_state,
                        cancel_reason=None, acknowledged=True, developer_payload=None, app_user_id=None,
                        order_id=None, price=29900, currency="RUB", sandbox=False)


@pytest.fixture
async def db() -> YieldingDatabase:
    wrapped = YieldingDatabase(AsyncMongoMockClient(tz_aware=True)["subscriptions_test"])
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


async def apply(db, sub: Subscription, now: datetime, claim: Claim | None = None, source: str = "job"):
    return await apply_subscription(db, sub, claim=claim, products=PRODUCTS, policy=POLICY, now=now, source=source)


async def balance(db, user_id) -> int:
    return (await ledger.get_balance(db, user_id)).balance


async def test_a_stale_answer_never_moves_a_subscription_back_but_its_paid_period_is_granted_once(db, user_id):
    claim = Claim(user_id=user_id, product_id="premium_monthly", purchase_id="p1")
    second = await apply(db, answer("p1", end=T0 + 2 * MONTH), T0 + MONTH + timedelta(minutes=5), claim, "verify")
    assert second.points_granted == 300
    stale = await apply(db, answer("p1", end=T0 + MONTH), T0 + timedelta(minutes=1), source="webhook")
    assert stale.subscription["end_date"] == T0 + 2 * MONTH  # the newer answer stays
    assert stale.points_granted == 300  # the first period was paid too; its own key
    assert (await apply(db, answer("p1", end=T0 + MONTH), T0 + timedelta(minutes=1))).points_granted == 0
    # A newer answer may legitimately move expiry back: hold sets it to when access was lost.
    held = await apply(db, answer("p1", "PAUSED", end=T0 + 2 * MONTH, payment_state=0), T0 + 2 * MONTH + timedelta(days=1))
    assert held.subscription["status"] == "PAUSED" and held.points_granted == 0
    assert (await db.users.find_one({"_id": user_id}))["subscription"]["status"] == "PAUSED"
    assert await balance(db, user_id) == 600
    assert [p["key"] for p in held.subscription["granted_periods"]] == [
        grant_key("p1", False, T0 + 2 * MONTH), grant_key("p1", False, T0 + MONTH)]
    assert (await ledger.verify_ledger(db)).ok


async def test_verify_webhook_and_job_racing_on_one_paid_period_grant_it_exactly_once(db, user_id):
    claim = Claim(user_id=user_id, product_id="premium_monthly", purchase_id="p1")
    now = T0 + timedelta(minutes=1)
    racing = db.with_hook(barrier := Barrier(4, "subscriptions", "find_one_and_update"))  # all four paths at once
    outcomes = await asyncio.gather(
        apply(racing, answer("p1"), now, claim, "verify"), apply(racing, answer("p1"), now, None, "webhook"),
        apply(racing, answer("p1"), now, claim, "verify"), apply(racing, answer("p1"), now, None, "job"),
    )
    assert barrier.met
    assert sorted(o.points_granted for o in outcomes) == [0, 0, 0, 300]
    doc = await db.subscriptions.find_one({"purchase_id": "p1"})
    assert doc["user_id"] == user_id and len(doc["granted_periods"]) == 1
    assert await balance(db, user_id) == 300 and (await ledger.verify_ledger(db)).ok


@pytest.mark.parametrize("status,payment_state,end", [
    ("GRACE", 0, T0 + MONTH), ("PAUSED", 0, T0), ("PENDING", 0, None), ("ACTIVE", 2, T0 + MONTH),
    ("CLOSED", 1, T0), ("TERMINATED", 1, T0), ("EXPIRED", 1, T0),
])
async def test_unpaid_trial_and_ended_answers_grant_nothing(db, user_id, status, payment_state, end):
    claim = Claim(user_id=user_id, product_id="premium_monthly", purchase_id="p1")
    outcome = await apply(db, answer("p1", status, end=end, payment_state=payment_state), T0, claim, "verify")
    assert outcome.points_granted == 0 and await balance(db, user_id) == 0
    assert outcome.subscription["status"] == status and outcome.subscription["user_id"] == user_id


async def test_the_user_shows_the_entitled_subscription_with_the_latest_end_even_when_changes_race(db, user_id):
    claim = Claim(user_id=user_id, product_id="premium_monthly")
    await apply(db, answer("old", "CLOSED", end=T0 - MONTH, auto_renewing=False), T0, claim)
    racing = db.with_hook(barrier := Barrier(3, "users", "update_one"))  # all three write the user's summary at once
    await asyncio.gather(
        apply(racing, answer("monthly", end=T0 + MONTH), T0, claim),
        apply(racing, answer("gift", "CANCELLED", end=T0 + MONTH + timedelta(days=10), auto_renewing=False), T0, claim),
        apply(racing, answer("pending", "PENDING", end=None, payment_state=0), T0, claim),
    )
    assert barrier.met
    user = await db.users.find_one({"_id": user_id})
    current = user["subscription"]
    assert current["purchase_id"] == "gift" and current["end_date"] == T0 + MONTH + timedelta(days=10)
    assert set(current) == {"plan", "product_id", "purchase_id", "status", "start_date", "end_date", "auto_renewing",
                            "sandbox", "last_checked_at"}
    revisions = [d["revision"] async for d in db.subscriptions.find({"user_id": user_id})]
    assert user["subscription_basis"] == sum(revisions)
    assert display_status(current["status"], current["end_date"], T0 + MONTH + timedelta(days=9), False) == "cancelled"
    assert display_status(current["status"], current["end_date"], T0 + MONTH + timedelta(days=10), False) == "expired"


def test_display_status_reads_entitlement_from_the_end_date_at_read_time():
    end = T0 + MONTH
    assert display_status("ACTIVE", end, T0, True) == "active"
    assert display_status("ACTIVE", end, T0, False) == "cancelled"
    assert display_status("GRACE", end, T0, True) == "grace"
    assert display_status("ACTIVE", end, end, True) == "expired"
    assert display_status("PAUSED", T0, end, True) == "paused"
    assert display_status("TERMINATED", T0, T0, False) == "expired"
    assert display_status("PENDING", None, T0, True) == "none"


def test_next_check_watches_period_ends_grace_hold_acknowledgements_and_lagging_renewals():
    end = T0 + MONTH
    active = {"status": "ACTIVE", "end_date": end, "user_id": ObjectId(), "source": "pay", "acknowledged": True,
              "auto_renewing": True}
    assert next_check(active, T0) == T0 + timedelta(days=1)  # not checked for 24 h
    assert next_check(active, end - timedelta(hours=3)) == end + timedelta(minutes=1)  # ending soon: just after the end
    assert next_check(active | {"acknowledged": False}, T0) == T0 + timedelta(minutes=1)  # acknowledgement retry
    assert next_check(active | {"acknowledged": False, "ack_attempts": 3}, T0) == T0 + timedelta(minutes=8)
    assert next_check(active | {"status": "GRACE"}, end - timedelta(days=2)) == end - timedelta(days=2) + timedelta(hours=6)
    assert next_check(active | {"status": "PAUSED", "end_date": T0}, end) == end + timedelta(hours=6)
    assert next_check(active | {"status": "PENDING", "end_date": None}, T0) == T0 + timedelta(minutes=1)
    # Ended but RuStore has not shown the renewal: soon at first, then as long again as it has been overdue.
    lagging = active | {"status": "EXPIRED"}
    assert next_check(lagging, end + timedelta(minutes=1)) == end + timedelta(minutes=3)
    assert next_check(lagging, end + timedelta(hours=1)) == end + timedelta(hours=2)
    assert next_check(lagging, end + timedelta(days=4)) is None
    for final in ("CLOSED", "TERMINATED"):
        assert next_check(active | {"status": final, "auto_renewing": False}, end) is None
    unacknowledged = active | {"acknowledged": False, "ack_attempts": 9}  # S7 backing off for hours
    assert next_check(unacknowledged, end - timedelta(minutes=30)) == end + timedelta(minutes=1)


async def test_a_claim_made_during_an_outage_binds_a_subscription_a_webhook_recorded_first(db, user_id):
    first = await apply(db, answer("p-outage"), T0, source="webhook")  # nothing names the owner yet
    assert first.subscription["user_id"] is None
    claim = Claim(user_id=user_id, product_id="premium_monthly", purchase_id="p-outage")
    await record_claim(db, "p-outage", False, claim, PRODUCTS["premium_monthly"], T0, "RuStoreUnavailable")
    stored = await subscriptions.find_subscription(db, "p-outage", False)
    assert [c["user_id"] for c in stored["claims"]] == [user_id] and stored["user_id"] is None  # kept, not bound
    done = await apply(db, answer("p-outage"), T0 + timedelta(minutes=1))  # the job re-checks it with RuStore
    assert done.subscription["user_id"] == user_id and done.points_granted == 300
    assert await balance(db, user_id) == 300


async def test_an_outage_claim_for_another_product_binds_nothing(db, user_id):
    claim = Claim(user_id=user_id, product_id="premium_yearly", purchase_id="p-wrong")
    await record_claim(db, "p-wrong", False, claim, PRODUCTS["premium_monthly"], T0, "RuStoreUnavailable")
    done = await apply(db, answer("p-wrong"), T0 + timedelta(minutes=1))
    assert done.subscription["user_id"] is None and await balance(db, user_id) == 0
