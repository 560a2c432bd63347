"""Applying RuStore's subscription answers: forward-only ordering, exactly-once period grants, the user's copy.

The store yields at every round trip (tests.support.yielding), so concurrent applies interleave the
way they do against a real server.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId
from mongomock_motor import AsyncMongoMockClient

from core.products import Product
from documents.billing import orders as orders
from documents.billing import records
from documents.billing.ownership import Claim, ProductMismatch, PurchaseBelongsToAnotherUser, PurchasePolicy, UnknownProduct
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
    assert (done.points_granted, done.points_clawed_back, done.balance) == (0, 0, None)


# --- What each step of applying an answer leaves behind (issue #20: the survivors of subscription_apply) ---

CATALOG = PRODUCTS | {
    "basic_monthly": Product(id="basic_monthly", type="subscription", title="Basic", description="", plan="monthly",
                             period_days=30, points_per_period=0),
    "token_monthly": Product(id="token_monthly", type="subscription", title="Token", description="", plan="monthly",
                             period_days=30, points_per_period=1),
}


async def another_user(db) -> ObjectId:
    uid = ObjectId()
    await db.users.insert_one({"_id": uid, "email": f"{uid}@example.com", "created_at": T0,
                               "points": ledger.new_wallet(T0), "subscription": None})
    return uid


def status_changes(status: str) -> float:
    from prometheus_client import REGISTRY
    return REGISTRY.get_sample_value("subscription_status_changes_total", {"status": status}) or 0.0


async def test_a_product_without_points_per_period_records_the_subscription_and_credits_nothing(db, user_id):
    claim = Claim(user_id=user_id, product_id="basic_monthly", purchase_id="p-basic")
    sub = replace(answer("p-basic"), product_id="basic_monthly")
    outcome = await apply_subscription(db, sub, claim=claim, products=CATALOG, policy=POLICY, now=T0, source="verify")
    assert (outcome.points_granted, outcome.balance, outcome.points_clawed_back) == (0, None, 0)
    assert outcome.subscription["user_id"] == user_id and outcome.subscription["granted_periods"] == []
    assert await balance(db, user_id) == 0 and await ledger.list_entries(db, user_id, limit=10) == []
    assert (await subscriptions.find_current(db, user_id))["product_id"] == "basic_monthly"


async def test_a_product_granting_one_point_per_period_credits_that_point(db, user_id):
    claim = Claim(user_id=user_id, product_id="token_monthly", purchase_id="p-token")
    sub = replace(answer("p-token"), product_id="token_monthly")
    outcome = await apply_subscription(db, sub, claim=claim, products=CATALOG, policy=POLICY, now=T0, source="verify")
    assert (outcome.points_granted, outcome.balance) == (1, 1) and await balance(db, user_id) == 1


async def test_a_period_granted_before_points_per_period_changed_is_not_reported_as_granted_again(db, user_id):
    claim = Claim(user_id=user_id, product_id="premium_monthly", purchase_id="p1")
    first = await apply(db, answer("p1"), T0, claim, "verify")
    assert (first.points_granted, first.balance) == (300, 300)
    raised = {"premium_monthly": replace(PRODUCTS["premium_monthly"], points_per_period=500)}
    again = await apply_subscription(db, answer("p1"), claim=None, products=raised, policy=POLICY,
                                     now=T0 + timedelta(minutes=5), source="job")
    assert (again.points_granted, again.balance) == (0, None)  # the period was paid for once, at the old setting
    assert await balance(db, user_id) == 300 and (await ledger.verify_ledger(db)).ok


async def test_each_period_records_who_credited_it_and_a_later_look_keeps_that(db, user_id):
    claim = Claim(user_id=user_id, product_id="premium_monthly", purchase_id="p1")
    await apply(db, answer("p1"), T0, claim, "verify")
    later = await apply(db, answer("p1"), T0 + timedelta(minutes=5), None, "webhook")
    (period,) = later.subscription["granted_periods"]
    assert period["credited_by"] == "verify" and period["entry_id"] is not None and period["points"] == 300


async def test_a_claim_for_another_product_is_refused_before_anything_is_recorded(db, user_id):
    claim = Claim(user_id=user_id, product_id="premium_yearly", purchase_id="p1")
    with pytest.raises(ProductMismatch):
        await apply(db, answer("p1"), T0, claim, "verify")
    assert await subscriptions.find_subscription(db, "p1", False) is None and await balance(db, user_id) == 0


async def test_a_claim_presenting_another_purchase_id_does_not_bind_this_subscription(db, user_id):
    claim = Claim(user_id=user_id, product_id="premium_monthly", purchase_id="p-other")
    outcome = await apply(db, answer("p1"), T0, claim, "verify")
    assert outcome.subscription["user_id"] is None and outcome.points_granted == 0
    assert await balance(db, user_id) == 0


async def test_the_developer_payload_of_an_order_binds_the_subscription_and_uses_the_order(db, user_id):
    order = await orders.create_order(db, user_id, "premium_monthly", "subscription", T0)
    sub = replace(answer("p-ordered"), developer_payload=order["developer_payload"])
    outcome = await apply(db, sub, T0, None, "webhook")  # no claim: the order names the owner
    assert outcome.subscription["user_id"] == user_id and outcome.points_granted == 300
    assert (await orders.find_order(db, order["_id"]))["used_by_purchase"] == "p-ordered"
    assert await balance(db, user_id) == 300


async def test_binding_one_subscription_leaves_other_unowned_subscriptions_unowned(db, user_id):
    stranger = await apply(db, answer("p-stranger"), T0, None, "webhook")
    assert stranger.subscription["user_id"] is None
    mine = await apply(db, answer("p-mine"), T0, Claim(user_id=user_id, product_id="premium_monthly",
                                                       purchase_id="p-mine"), "verify")
    assert mine.subscription["purchase_id"] == "p-mine" and mine.subscription["user_id"] == user_id
    assert (await subscriptions.find_subscription(db, "p-stranger", False))["user_id"] is None
    assert [p["key"] for p in mine.subscription["granted_periods"]] == [grant_key("p-mine", False, T0 + MONTH)]
    assert (await subscriptions.find_subscription(db, "p-stranger", False))["granted_periods"] == []


async def test_two_accounts_claiming_one_subscription_at_once_bind_it_to_one_and_refuse_the_other(db, user_id):
    other = await another_user(db)
    await apply(db, answer("p1"), T0, None, "webhook")  # recorded, not yet owned
    arrived, both_here, calls = [], asyncio.Event(), {}

    def meet_at_bind(collection: str, method: str):
        """Park each claimant at its second write (the bind), after both read the subscription unowned."""
        if (collection, method) != ("subscriptions", "find_one_and_update"):
            return None
        task = asyncio.current_task()
        calls[task] = calls.get(task, 0) + 1
        if calls[task] != 2:
            return None
        arrived.append(task)
        if len(arrived) == 2:
            both_here.set()
        return asyncio.wait_for(both_here.wait(), 5)
    hooked = db.with_hook(meet_at_bind)
    results = await asyncio.gather(
        *(apply(hooked, answer("p1"), T0 + timedelta(minutes=1), Claim(user_id=u, product_id="premium_monthly",
                                                                       purchase_id="p1"), "verify")
          for u in (user_id, other)), return_exceptions=True)
    assert both_here.is_set()
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 1 and isinstance(refused[0], PurchaseBelongsToAnotherUser)
    (won,) = [r for r in results if not isinstance(r, Exception)]
    winner = won.subscription["user_id"]
    loser = other if winner == user_id else user_id
    assert (await subscriptions.find_subscription(db, "p1", False))["user_id"] == winner
    assert await balance(db, winner) == 300 and await balance(db, loser) == 0
    assert (await subscriptions.find_current(db, loser)) is None


async def test_the_history_records_changes_only_and_keeps_the_latest_fifty_and_sixty_periods(db, user_id):
    claim = Claim(user_id=user_id, product_id="premium_monthly", purchase_id="p1")
    await apply(db, answer("p1"), T0, claim, "verify")
    await apply(db, answer("p1"), T0 + timedelta(minutes=1), None, "webhook")  # the same answer again
    cancelled = await apply(db, answer("p1", "CANCELLED", auto_renewing=False), T0 + timedelta(minutes=2))
    assert [(h["status"], h["end_date"], h["auto_renewing"], h["source"]) for h in cancelled.subscription["history"]] == [
        ("ACTIVE", T0 + MONTH, True, "verify"), ("CANCELLED", T0 + MONTH, False, "job")]
    for n in range(2, 63):  # 61 more renewals, each a new paid period
        last = await apply(db, answer("p1", end=T0 + n * MONTH), T0 + (n - 1) * MONTH + timedelta(minutes=1))
    history, periods = last.subscription["history"], last.subscription["granted_periods"]
    assert len(history) == 50 and history[-1]["end_date"] == T0 + 62 * MONTH
    assert len(periods) == 60 and periods[-1]["key"] == grant_key("p1", False, T0 + 62 * MONTH)
    assert periods[0]["key"] == grant_key("p1", False, T0 + 3 * MONTH)
    assert await balance(db, user_id) == 62 * 300


async def test_status_changes_are_counted_once_per_change(db, user_id):
    claim = Claim(user_id=user_id, product_id="premium_monthly", purchase_id="p1")
    active, cancelled = status_changes("ACTIVE"), status_changes("CANCELLED")
    await apply(db, answer("p1"), T0, claim, "verify")
    await apply(db, answer("p1"), T0 + timedelta(minutes=1), None, "webhook")
    assert (status_changes("ACTIVE"), status_changes("CANCELLED")) == (active + 1, cancelled)
    await apply(db, answer("p1", "CANCELLED", auto_renewing=False), T0 + timedelta(minutes=2))
    assert (status_changes("ACTIVE"), status_changes("CANCELLED")) == (active + 1, cancelled + 1)


async def test_the_next_check_follows_the_answer_pending_unacknowledged_acknowledged(db, user_id):
    claim = Claim(user_id=user_id, product_id="premium_monthly", purchase_id="p1")
    pending = await apply(db, replace(answer("p1", "PENDING", end=None, payment_state=0), acknowledged=False), T0, claim,
                          "verify")
    assert pending.subscription["next_check_at"] == T0 + timedelta(minutes=1)  # first re-check: a minute
    unacked = await apply(db, replace(answer("p1"), acknowledged=False), T0 + timedelta(minutes=1), claim, "verify")
    assert unacked.subscription["acknowledged"] is False
    assert unacked.subscription["next_check_at"] == T0 + timedelta(minutes=2)  # the acknowledgement (S7) retry
    acked = await apply(db, answer("p1"), T0 + timedelta(minutes=2))
    assert acked.subscription["acknowledged"] is True
    assert acked.subscription["next_check_at"] == T0 + timedelta(minutes=2) + timedelta(days=1)  # the daily look
    assert (await ledger.verify_ledger(db)).ok and await balance(db, user_id) == 300


async def test_a_claim_recorded_during_an_outage_is_retried_with_backoff_from_its_first_failure(db, user_id):
    claim = Claim(user_id=user_id, product_id="premium_monthly", purchase_id="p-outage")
    await record_claim(db, "p-outage", False, claim, PRODUCTS["premium_monthly"], T0, "RuStoreUnavailable")
    stored = await subscriptions.find_subscription(db, "p-outage", False)
    assert stored["next_check_at"] == T0 and stored["source"] == "pay" and stored["subscription_token"] is None
    await subscriptions.note_check_failure(db, stored, T0, "RuStoreUnavailable")
    assert (await subscriptions.find_subscription(db, "p-outage", False))["next_check_at"] == T0 + timedelta(minutes=2)


async def test_an_apply_that_died_after_recording_is_due_again_in_two_minutes(db, user_id):
    calls = {"n": 0}

    def die_at_state_write(collection: str, method: str):
        if (collection, method) == ("subscriptions", "find_one_and_update"):
            calls["n"] += 1
            if calls["n"] == 2:
                raise ConnectionError("process died before writing the state")
    with pytest.raises(ConnectionError):
        await apply(db.with_hook(die_at_state_write), answer("p1"), T0, None, "webhook")
    assert [d["purchase_id"] for d in await subscriptions.due_for_check(db, T0 + timedelta(minutes=1), 10)] == []
    assert [d["purchase_id"] for d in await subscriptions.due_for_check(db, T0 + timedelta(minutes=2), 10)] == ["p1"]


async def test_a_final_subscription_keeps_its_check_until_shown_on_its_user_and_only_it_stops(db, user_id):
    claim = Claim(user_id=user_id, product_id="premium_monthly")
    await apply(db, answer("live"), T0, replace(claim, purchase_id="live"), "verify")
    live = await apply(db, answer("live"), T0, None, "webhook")  # revision 3: what `gone` reaches when shown
    now = T0 + timedelta(minutes=1)

    def die_at_projection(collection: str, method: str):
        if (collection, method) == ("users", "update_one"):
            raise ConnectionError("process died before showing the subscription on its user")
    closed = answer("gone", "CLOSED", end=T0 - MONTH, auto_renewing=False)
    with pytest.raises(ConnectionError):
        await apply(db.with_hook(die_at_projection), closed, now, replace(claim, purchase_id="gone"), "verify")
    gone = await subscriptions.find_subscription(db, "gone", False)
    assert gone["user_id"] == user_id and gone["status"] == "CLOSED"
    assert gone["next_check_at"] == now + timedelta(minutes=2)
    shown = await apply(db, closed, now + timedelta(minutes=2))  # the job's look finishes it
    assert shown.subscription["revision"] == live.subscription["revision"]
    assert (await subscriptions.find_subscription(db, "gone", False))["next_check_at"] is None
    assert (await subscriptions.find_subscription(db, "live", False))["next_check_at"] == T0 + timedelta(days=1)
    assert (await subscriptions.find_current(db, user_id))["purchase_id"] == "live"


async def test_a_projection_computed_before_a_newer_answer_never_overwrites_the_users_copy(db, user_id):
    claim = Claim(user_id=user_id, product_id="basic_monthly", purchase_id="p-basic")
    sub = replace(answer("p-basic"), product_id="basic_monthly")  # no points: no ledger calls in between

    async def apply_at(db_, answer_, now):
        return await apply_subscription(db_, answer_, claim=claim, products=CATALOG, policy=POLICY, now=now,
                                        source="verify")
    await apply_at(db, sub, T0)
    writes, parked, gate = {"state": 0}, asyncio.Event(), asyncio.Event()

    def park_projection(collection: str, method: str):
        """Park the first apply right before it writes the user's copy, computed from the answer it wrote."""
        if (collection, method) == ("subscriptions", "find_one_and_update"):
            writes["state"] += 1
        elif (collection, method) == ("users", "update_one") and writes["state"] == 2 and not parked.is_set():
            parked.set()
            return gate.wait()
    slow = asyncio.create_task(apply_at(db.with_hook(park_projection), sub, T0 + timedelta(minutes=1)))
    await parked.wait()
    await apply_at(db, replace(sub, status=SubscriptionStatus.CANCELLED, auto_renewing=False), T0 + timedelta(minutes=2))
    gate.set()
    await slow
    current = await subscriptions.find_current(db, user_id)
    assert (current["status"], current["auto_renewing"]) == ("CANCELLED", False)


# --- The rules of `subscriptions` at their edges (issue #20: the survivors of documents/subscriptions/store.py) ---

def test_grant_keys_name_the_purchase_and_the_period_end_in_milliseconds():
    end = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
    assert grant_key("p1", False, end) == "subgrant:p1:1774958400000"
    assert grant_key("p1", True, end + timedelta(milliseconds=1)) == "subgrant:sandbox:p1:1774958400001"


def test_only_subscriptions_this_app_sells_are_accepted():
    products = CATALOG | {"points_100": Product(id="points_100", type="consumable", title="100", description="",
                                                points=100)}
    assert records.subscription_product(products, "basic_monthly") is products["basic_monthly"]
    with pytest.raises(UnknownProduct):
        records.subscription_product(products, "premium_lifetime")
    with pytest.raises(UnknownProduct):
        records.subscription_product(products, None)
    with pytest.raises(records.NotASubscriptionProduct):
        records.subscription_product(products, "points_100")


def test_next_check_at_the_exact_ends_of_periods_grace_and_the_renewal_lag_window():
    end = T0 + MONTH
    acked = {"status": "ACTIVE", "end_date": end, "user_id": ObjectId(), "source": "pay", "acknowledged": True,
             "auto_renewing": True}
    grace = acked | {"status": "GRACE"}
    assert next_check(grace, end - timedelta(hours=3)) == end + timedelta(minutes=1)  # just after the grace ends
    assert next_check(grace, end) == end + timedelta(hours=6)  # at its end: the 6-hour watch
    assert next_check(acked, end) == end + timedelta(minutes=2)  # at the end of a paid period: soon, not in a day
    cancelled = acked | {"status": "CANCELLED", "auto_renewing": False}
    assert next_check(cancelled, end + timedelta(hours=1)) == end + timedelta(hours=2)  # ended, not closed yet
    lagging = acked | {"status": "EXPIRED"}
    assert next_check(lagging, end) == end + timedelta(minutes=2)  # the lag window opens at the end
    assert next_check(lagging, end + subscriptions.LAG_WINDOW - timedelta(seconds=1)) is not None
    assert next_check(lagging, end + subscriptions.LAG_WINDOW) is None  # and closes three days later


async def _show(db, user_id, key: str, status: str, end: datetime, now: datetime = T0):
    claim = Claim(user_id=user_id, product_id="basic_monthly", purchase_id=key)
    sub = replace(answer(key, status, end=end, payment_state=0 if status == "PAUSED" else 1),
                  product_id="basic_monthly")
    await apply_subscription(db, sub, claim=claim, products=CATALOG, policy=POLICY, now=now, source="verify")


async def test_the_users_copy_shows_a_live_subscription_before_a_paused_one_before_an_ended_one(db, user_id):
    await _show(db, user_id, "paused", "PAUSED", T0 + 3 * MONTH)  # held, with the latest end of the three
    await _show(db, user_id, "closed", "CLOSED", T0 + 2 * MONTH)
    await _show(db, user_id, "live", "ACTIVE", T0 + MONTH)
    now = T0 + timedelta(days=1)
    assert (await subscriptions.project_user(db, user_id, now))["purchase_id"] == "live"
    assert (await subscriptions.find_current(db, user_id))["purchase_id"] == "live"
    other = await another_user(db)
    await _show(db, other, "o-paused", "PAUSED", T0)
    await _show(db, other, "o-closed", "CLOSED", T0 + 2 * MONTH)  # ended, although its end date is later
    assert (await subscriptions.project_user(db, other, now))["purchase_id"] == "o-paused"
    # A period that ends exactly now is over: the paused one is shown.
    await _show(db, other, "o-ending", "ACTIVE", T0 + MONTH)
    assert (await subscriptions.project_user(db, other, T0 + MONTH))["purchase_id"] == "o-paused"
    assert (await subscriptions.project_user(db, other, T0 + MONTH - timedelta(seconds=1)))["purchase_id"] == "o-ending"
    assert (await subscriptions.find_current(db, user_id))["purchase_id"] == "live"  # each user keeps their own


async def test_each_user_is_shown_their_own_subscription(db, user_id):
    other = await another_user(db)
    await _show(db, other, "theirs", "ACTIVE", T0 + MONTH)
    assert await subscriptions.find_current(db, user_id) is None
    assert (await subscriptions.find_current(db, other))["purchase_id"] == "theirs"
    await _show(db, user_id, "mine", "CANCELLED", T0 + MONTH)
    assert (await subscriptions.find_current(db, user_id))["purchase_id"] == "mine"
    assert (await subscriptions.find_current(db, other))["purchase_id"] == "theirs"


def _parked_projection(gate: asyncio.Event, parked: asyncio.Event, *, die_after_write: bool):
    """Hook: park an apply right before it writes the user's copy; optionally die right after that write."""
    state = {"writes": 0, "wrote_copy": False}

    def hook(collection: str, method: str):
        if (collection, method) == ("subscriptions", "find_one_and_update"):
            state["writes"] += 1
        elif (collection, method) == ("users", "update_one") and state["writes"] == 2 and not parked.is_set():
            parked.set()
            state["wrote_copy"] = True
            return gate.wait()
        elif die_after_write and state["wrote_copy"] and (collection, method) == ("subscriptions", "find"):
            raise ConnectionError("process died right after writing the user's copy")
    return hook


async def test_a_projection_that_died_after_writing_never_leaves_an_older_copy_over_a_newer_one(db, user_id):
    await _show(db, user_id, "p-basic", "ACTIVE", T0 + MONTH)
    gate, parked = asyncio.Event(), asyncio.Event()
    hooked = db.with_hook(_parked_projection(gate, parked, die_after_write=True))
    slow = asyncio.create_task(_show(hooked, user_id, "p-basic", "ACTIVE", T0 + MONTH, T0 + timedelta(minutes=1)))
    await parked.wait()
    await _show(db, user_id, "p-basic", "CANCELLED", T0 + MONTH, T0 + timedelta(minutes=2))  # newer, shown at once
    gate.set()
    with pytest.raises(ConnectionError):
        await slow
    assert (await subscriptions.find_current(db, user_id))["status"] == "CANCELLED"


async def test_an_answer_whose_process_died_before_showing_it_is_shown_by_a_projection_that_read_before_it(db, user_id):
    await _show(db, user_id, "p-basic", "ACTIVE", T0 + MONTH)
    gate, parked = asyncio.Event(), asyncio.Event()
    hooked = db.with_hook(_parked_projection(gate, parked, die_after_write=False))
    slow = asyncio.create_task(_show(hooked, user_id, "p-basic", "ACTIVE", T0 + MONTH, T0 + timedelta(minutes=1)))
    await parked.wait()

    def die_at_projection(collection: str, method: str):
        if (collection, method) == ("users", "update_one"):
            raise ConnectionError("process died before showing the subscription on its user")
    with pytest.raises(ConnectionError):
        await _show(db.with_hook(die_at_projection), user_id, "p-basic", "CANCELLED", T0 + MONTH, T0 + timedelta(minutes=2))
    gate.set()
    await slow  # its copy was computed before the cancel; it sees the revisions moved and computes it again
    assert (await subscriptions.find_current(db, user_id))["status"] == "CANCELLED"


async def test_failed_checks_and_acknowledgements_back_off_on_their_own_counters(db, user_id):
    await _show(db, user_id, "p-basic", "ACTIVE", T0 + MONTH)
    doc = await subscriptions.find_subscription(db, "p-basic", False)
    await subscriptions.note_check_failure(db, doc, T0, "RuStoreUnavailable")
    doc = await subscriptions.find_subscription(db, "p-basic", False)
    assert (doc["check_attempts"], doc["ack_attempts"], doc["next_check_at"]) == (1, 0, T0 + timedelta(minutes=2))
    assert doc["last_error"] == "RuStoreUnavailable"
    await subscriptions.note_check_failure(db, doc, T0, "RuStoreUnavailable")
    doc = await subscriptions.find_subscription(db, "p-basic", False)
    assert (doc["check_attempts"], doc["next_check_at"]) == (2, T0 + timedelta(minutes=4))
    await subscriptions.note_check_failure(db, doc, T0, "outage", outage=True)  # an outage counts nothing
    doc = await subscriptions.find_subscription(db, "p-basic", False)
    assert (doc["check_attempts"], doc["next_check_at"]) == (2, T0 + timedelta(minutes=4))
    await subscriptions.note_check_failure(db, doc, T0, "acknowledge: RuStoreRejected", ack=True)
    doc = await subscriptions.find_subscription(db, "p-basic", False)
    assert (doc["check_attempts"], doc["ack_attempts"], doc["next_check_at"]) == (2, 1, T0 + timedelta(minutes=2))


async def test_an_acknowledgement_is_recorded_and_the_next_check_follows_the_subscription(db, user_id):
    claim = Claim(user_id=user_id, product_id="basic_monthly")
    for key, status in (("live", "ACTIVE"), ("gone", "CLOSED")):
        sub = replace(answer(key, status, end=T0 + MONTH if status == "ACTIVE" else T0), product_id="basic_monthly",
                      acknowledged=False)
        await apply_subscription(db, sub, claim=replace(claim, purchase_id=key), products=CATALOG, policy=POLICY,
                                 now=T0, source="verify")
    live = await subscriptions.find_subscription(db, "live", False)
    await subscriptions.note_check_failure(db, live, T0, "acknowledge: RuStoreRejected", ack=True)
    now = T0 + timedelta(minutes=5)
    acked = await subscriptions.mark_acknowledged(db, await subscriptions.find_subscription(db, "live", False), now)
    assert (acked["acknowledged"], acked["acknowledged_at"], acked["ack_attempts"]) == (True, now, 0)
    assert acked["next_check_at"] == now + timedelta(days=1)  # no S7 retry left: the daily look
    gone = await subscriptions.mark_acknowledged(db, await subscriptions.find_subscription(db, "gone", False), now)
    assert gone["acknowledged"] is True and gone["next_check_at"] == now + timedelta(minutes=2)


async def test_a_legacy_token_presented_as_a_purchase_id_proves_nothing_and_legacy_evidence_still_binds(db, user_id):
    # As if RuStore's V4 lookup answered for a BillingClient token (`invoiceId.userId`) without a purchaseId of its
    # own: the token is guessable, so presenting it on the Pay SDK path binds nobody either.
    token = "100123.777"
    guesser = Claim(user_id=ObjectId(), product_id="premium_monthly", purchase_id=token)
    outcome = await apply(db, answer(token), T0 + timedelta(minutes=1), guesser, "verify")
    assert outcome.subscription["user_id"] is None and outcome.points_granted == 0
    # RuStore's own subscription record naming our user as appUserId is evidence (the first invoice was unreadable).
    named = replace(answer(token), app_user_id=str(user_id))
    bound = await apply(db, named, T0 + timedelta(minutes=2), source="job")
    assert bound.subscription["user_id"] == user_id and bound.points_granted == 300
    assert await balance(db, user_id) == 300
