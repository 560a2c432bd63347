"""The purchase rules on RuStore records, on a store that yields at every call like a real server."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId

from core.products import Product
from documents import purchases, wallet
from documents.billing.ownership import AppMismatch, Claim, PurchaseBelongsToAnotherUser, PurchasePolicy, SandboxNotAllowed
from documents.common import utc
from documents.purchases import payments
from documents.purchases.effects import credit_key
from documents.purchases.payments import apply_payment
from rustore import InvoiceStatus, Payment
from tests.support.barrier import Barrier

PRODUCTS = {"points_100": Product("points_100", "consumable", "100 points", "", price=9900, points=100)}
POLICY = PurchasePolicy(app_id=1000001, allow_sandbox=False)
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def payment(status: InvoiceStatus = InvoiceStatus.CONFIRMED, **overrides) -> Payment:
    """A RuStore P3 record as the client parses it."""
    base = Payment(invoice_id="100001", status=status, status_raw=status.value, purchase_id="p-1", order_id=None,
                   app_id=1000001, product_id="points_100", amount=9900, currency="RUB", quantity=1,
                   developer_payload=None, app_user_id=None, invoice_date=NOW, payment_date=NOW, refund_date=None,
                   sandbox=False)
    return replace(base, **overrides)


async def apply(db, pay: Payment, user: ObjectId | None, source: str = "test"):
    """Apply RuStore's record; `user` claims it with the purchaseId the SDK gave (possession)."""
    claim = Claim(user_id=user, product_id=pay.product_id, purchase_id=pay.purchase_id) if user else None
    return await apply_payment(db, pay, claim=claim, products=PRODUCTS, policy=POLICY, now=NOW, source=source)


async def test_a_stale_answer_never_moves_a_purchase_backwards(db, make_user):
    user = await make_user()
    await apply(db, payment(InvoiceStatus.CONFIRMED), user)
    await apply(db, payment(InvoiceStatus.REFUNDED), user)
    late = await apply(db, payment(InvoiceStatus.CONFIRMED), user)  # an old answer arriving last
    assert late.purchase["state"] == "refunded"
    assert (await wallet.get_balance(db, user)).balance == 0
    assert (await wallet.verify_ledger(db)).ok


@pytest.mark.parametrize(("taken_back", "stale"), [(InvoiceStatus.REFUNDED, InvoiceStatus.CONFIRMED),
                                                   (InvoiceStatus.REVERSED, InvoiceStatus.PAID)])
async def test_a_stale_confirmed_answer_for_a_refunded_never_credited_purchase_credits_nothing(
        db, make_user, taken_back, stale):
    # RuStore refunded (or reversed) the purchase before we ever credited it; an older CONFIRMED (PAID)
    # answer arrives last.  The purchase stays taken back, no +100 credit / -100 clawback pair is
    # written, and the caller is not told it credited anything (documents/purchases/payments.py: a stale
    # answer keeps what we know).
    user = await make_user()
    refunded = await apply(db, payment(taken_back), user)
    state = refunded.purchase["state"]
    assert state == taken_back.value.lower() and not refunded.credited_now
    late = await apply(db, payment(stale), user)
    assert late.purchase["state"] == state and not late.credited_now
    entries = await wallet.list_entries(db, user, limit=10)
    assert entries == []
    assert (await wallet.get_balance(db, user)).balance == 0
    assert (await wallet.verify_ledger(db)).ok


async def test_racing_applications_credit_once(db, make_user):
    user = await make_user()
    racing = db.with_hook(barrier := Barrier(2))  # two of them reach the ledger's credit at once
    outcomes = await asyncio.gather(*(apply(racing, payment(), user) for _ in range(12)))
    assert barrier.met
    assert sum(o.credited_now for o in outcomes) == 1
    assert (await wallet.get_balance(db, user)).balance == 100
    assert await db[purchases.COLLECTION].count_documents({}) == 1
    assert (await wallet.verify_ledger(db)).ok


async def test_two_accounts_racing_for_one_purchase_bind_it_to_exactly_one(db, make_user):
    first, second = await make_user(), await make_user()
    racing = db.with_hook(barrier := Barrier(2, purchases.COLLECTION, "find_one_and_update"))  # both bind at once
    results = await asyncio.gather(apply(racing, payment(), first), apply(racing, payment(), second),
                                   return_exceptions=True)
    assert barrier.met
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, PurchaseBelongsToAnotherUser)]
    assert len(winners) == 1 and len(losers) == 1
    balances = [(await wallet.get_balance(db, u)).balance for u in (first, second)]
    assert sorted(balances) == [0, 100]


async def test_records_of_another_app_or_sandbox_records_are_refused_and_change_nothing(db, make_user):
    user = await make_user()
    with pytest.raises(AppMismatch):
        await apply(db, payment(app_id=42), user)
    with pytest.raises(SandboxNotAllowed):
        await apply(db, payment(sandbox=True), user)
    assert await db[purchases.COLLECTION].count_documents({}) == 0
    assert (await wallet.get_balance(db, user)).balance == 0


async def test_a_refund_takes_back_a_credit_whose_entry_a_crash_left_unwritten(raw_db, make_user, db):
    user = await make_user()
    crashed = {"done": False}

    def crash_on_first_entry_write(collection: str, method: str):
        if collection == "transactions" and method.startswith("insert") and not crashed["done"]:
            crashed["done"] = True
            raise ConnectionError("process died after the balance update")
    dying = db.with_hook(crash_on_first_entry_write)
    try:
        await apply(dying, payment(), user)
    except ConnectionError:
        pass
    assert crashed["done"]
    assert await wallet.find_entry(db, user, credit_key("100001", False)) is None  # only in the outbox
    outcome = await apply(db, payment(InvoiceStatus.REFUNDED), user)
    assert outcome.purchase["state"] == "refunded"
    assert (await wallet.get_balance(db, user)).balance == 0
    assert (await wallet.verify_ledger(db)).ok


async def test_a_crash_between_credit_and_state_is_finished_by_the_next_look(db, make_user):
    user = await make_user()

    def crash_on_state_write(collection: str, method: str):
        if collection == purchases.COLLECTION and method == "find_one_and_update" and state["armed"]:
            state["calls"] += 1
            if state["calls"] == 4:  # upsert, bind, the confirm candidate, then the state move
                raise ConnectionError("process died before recording the new state")
    state = {"armed": True, "calls": 0}
    with pytest.raises(ConnectionError):
        await apply(db.with_hook(crash_on_state_write), payment(), user)
    stored = await purchases.find_purchase(db, "100001", False)
    assert stored["state"] == "pending" and stored["next_check_at"] is not None  # the job will look again
    again = await apply(db, payment(), None, source="job")
    assert again.purchase["state"] == "confirmed" and not again.credited_now
    assert (await wallet.get_balance(db, user)).balance == 100
    assert (await wallet.verify_ledger(db)).ok


async def test_a_refund_racing_a_grant_is_never_lost(db, make_user, raw_db):
    """The paid answer credits while the refund answer looks for the credit: one of them takes it back."""
    user = await make_user()
    gate, parked, armed = asyncio.Event(), asyncio.Event(), {"on": True}

    def park_before_credit(collection: str, method: str):
        if armed["on"] and collection == "transactions" and method == "find_one":
            armed["on"] = False
            parked.set()
            return gate.wait()
    grant = asyncio.create_task(apply(db.with_hook(park_before_credit), payment(InvoiceStatus.CONFIRMED), user))
    await asyncio.wait_for(parked.wait(), 5)  # the paid answer is bound and about to credit
    refund = await apply(db, payment(InvoiceStatus.REFUNDED), None, source="webhook")
    assert not grant.done()  # the grant was held there while the refund ran to its end
    gate.set()
    await grant
    assert refund.purchase["state"] == "refunded"
    stored = await purchases.find_purchase(db, "100001", False)
    assert stored["state"] == "refunded" and stored["next_check_at"] is None
    assert (await wallet.get_balance(db, user)).balance == 0
    assert (await wallet.verify_ledger(db)).ok


async def test_a_refund_whose_process_died_before_the_clawback_is_finished_by_the_next_look(db, make_user):
    user = await make_user()
    await apply(db, payment(InvoiceStatus.CONFIRMED), user)

    def die_before_clawback(collection: str, method: str):
        if collection == "users" and method == "update_one":  # the first effect of the revocation
            raise ConnectionError("process died after recording the refund")
    with pytest.raises(ConnectionError):
        await apply(db.with_hook(die_before_clawback), payment(InvoiceStatus.REFUNDED), None, source="webhook")
    stored = await purchases.find_purchase(db, "100001", False)
    assert stored["state"] == "refunded" and stored["next_check_at"] is not None  # due for the job
    assert stored["revoke_pending"] is True  # what an admin sees in Compass: a take-back still to finish
    await apply(db, payment(InvoiceStatus.REFUNDED), None, source="job")
    assert (await wallet.get_balance(db, user)).balance == 0
    finished = await purchases.find_purchase(db, "100001", False)
    assert (finished["next_check_at"], finished["revoke_pending"]) == (None, False)


async def test_a_pack_whose_points_changed_since_its_credit_stays_credited_once(db, make_user):
    user = await make_user()
    await apply(db, payment(), user)
    bigger = {"points_100": replace(PRODUCTS["points_100"], points=150)}
    again = await apply_payment(db, payment(), claim=Claim(user_id=user, product_id="points_100", purchase_id="p-1"),
                                products=bigger,
                                policy=POLICY, now=NOW, source="job")
    assert not again.credited_now and again.purchase["state"] == "confirmed"
    assert (await wallet.get_balance(db, user)).balance == 100


async def test_a_claim_made_during_an_outage_is_kept_on_a_purchase_a_webhook_recorded_first(db, make_user):
    user, other = await make_user(), await make_user()
    first = await apply(db, payment(), None, source="webhook")  # no owner known: recorded, not polled
    assert first.purchase["user_id"] is None
    assert (await purchases.find_purchase(db, "100001", False))["next_check_at"] is None
    for claimant, purchase_id in ((other, "guessed"), (user, "p-1")):  # the other account claims first
        await payments.record_unverified(db, "100001", False, NOW, "RuStoreUnavailable",
                                              Claim(user_id=claimant, product_id="points_100", purchase_id=purchase_id))
    stored = await purchases.find_purchase(db, "100001", False)
    assert [c["user_id"] for c in stored["claims"]] == [other, user] and stored["user_id"] is None
    assert stored["next_check_at"] is not None
    done = await apply(db, payment(), None, source="job")  # the job, with no claim of its own
    assert done.purchase["user_id"] == user and done.credited_now
    assert (await wallet.get_balance(db, user)).balance == 100
    assert (await wallet.get_balance(db, other)).balance == 0


async def test_an_orderless_claim_without_a_matching_purchase_id_binds_nothing(db, make_user):
    thief = await make_user()
    minimal = payment(purchase_id=None)  # RuStore's published record: no purchaseId
    pending = await apply_payment(db, minimal, claim=Claim(user_id=thief, product_id="points_100", purchase_id="x"),
                                  products=PRODUCTS, policy=POLICY, now=NOW, source="verify")
    assert pending.pending_claim and pending.purchase["user_id"] is None and not pending.credited_now
    assert (await wallet.get_balance(db, thief)).balance == 0


def counted(metric, *labels: str) -> float:
    """The current value of one labelled counter (process-wide, so tests compare before/after)."""
    return metric.labels(*labels)._value.get()


async def test_a_refund_reports_the_balance_records_its_clawback_and_counts_a_shortfall_once(db, make_user):
    from core.metrics import CLAWBACK_SHORTFALL, CLAWBACK_SHORTFALL_POINTS, PURCHASE_REVENUE, PURCHASES_CREDITED
    user = await make_user()
    sold, revenue = counted(PURCHASES_CREDITED, "points_100", "false"), counted(PURCHASE_REVENUE, "points_100", "RUB", "false")
    credited = await apply(db, payment(), user)
    assert credited.credited_now and credited.balance == 100
    await apply(db, payment(), user)  # a replay sells nothing more
    assert counted(PURCHASES_CREDITED, "points_100", "false") == sold + 1
    assert counted(PURCHASE_REVENUE, "points_100", "RUB", "false") == revenue + 9900
    await wallet.debit(db, user, 30, "spend", "gen-1")
    short, short_points = counted(CLAWBACK_SHORTFALL, "purchase"), counted(CLAWBACK_SHORTFALL_POINTS, "purchase")
    refunded = await apply(db, payment(InvoiceStatus.REFUNDED), user)
    assert refunded.balance == 0 and not refunded.credited_now
    [clawback] = [e for e in await wallet.list_entries(db, user, limit=10) if e.type == "clawback"]
    stored = await purchases.find_purchase(db, "100001", False)
    assert stored["clawback_entry_id"] == clawback.id and clawback.amount == -70
    assert (counted(CLAWBACK_SHORTFALL, "purchase"), counted(CLAWBACK_SHORTFALL_POINTS, "purchase")) == (
        short + 1, short_points + 30)
    await apply(db, payment(InvoiceStatus.REFUNDED), user)  # the same refund seen again
    assert (counted(CLAWBACK_SHORTFALL, "purchase"), counted(CLAWBACK_SHORTFALL_POINTS, "purchase")) == (
        short + 1, short_points + 30)
    assert (await wallet.verify_ledger(db)).ok


async def test_a_full_clawback_counts_no_shortfall_and_revenue_needs_a_currency(db, make_user):
    from core.metrics import CLAWBACK_SHORTFALL, PURCHASE_REVENUE, PURCHASES_CREDITED
    user = await make_user()
    revenue = counted(PURCHASE_REVENUE, "points_100", "", "false")
    sold = counted(PURCHASES_CREDITED, "points_100", "false")
    await apply(db, payment(currency=None), user)
    assert counted(PURCHASES_CREDITED, "points_100", "false") == sold + 1
    assert counted(PURCHASE_REVENUE, "points_100", "", "false") == revenue  # no currency: no revenue row
    assert counted(PURCHASE_REVENUE, "points_100", "None", "false") == 0
    short = counted(CLAWBACK_SHORTFALL, "purchase")
    refunded = await apply(db, payment(InvoiceStatus.REFUNDED), user)
    assert refunded.balance == 0 and counted(CLAWBACK_SHORTFALL, "purchase") == short


@pytest.mark.parametrize("older_document", [False, True])
async def test_a_non_consumable_records_its_grant_counts_one_sale_and_a_refund_takes_it_back(db, make_user,
                                                                                            older_document):
    from core.metrics import PURCHASES_CREDITED
    products = {**PRODUCTS, "no_ads": Product("no_ads", "non_consumable", "No ads", "", price=19900)}
    user = await make_user()
    sold = counted(PURCHASES_CREDITED, "no_ads", "false")
    pay = payment(product_id="no_ads", amount=19900)
    claim = Claim(user_id=user, product_id="no_ads", purchase_id=pay.purchase_id)
    outcomes = []
    for _ in range(2):
        outcomes.append(await apply_payment(db, pay, claim=claim, products=products, policy=POLICY, now=NOW,
                                            source="test"))
        assert counted(PURCHASES_CREDITED, "no_ads", "false") == sold + 1  # the first grant counts the sale
    assert [o.credited_now for o in outcomes] == [True, False]
    outcome = outcomes[-1]
    assert counted(PURCHASES_CREDITED, "no_ads", "false") == sold + 1
    granted = outcome.purchase["granted"]
    assert (granted["points"], granted["owned"], granted["product_id"], granted["credit_key"]) == (0, True, "no_ads", None)
    assert [p["product_id"] for p in (await db.users.find_one({"_id": user}))["owned_products"]] == ["no_ads"]
    if older_document:  # written before purchases recorded their grant: revocation looks for both kinds
        await db[purchases.COLLECTION].update_one({"invoice_id": "100001"}, {"$unset": {"granted": ""}})
    await apply_payment(db, payment(InvoiceStatus.REFUNDED, product_id="no_ads", amount=19900), claim=claim,
                        products=products, policy=POLICY, now=NOW, source="test")
    assert (await db.users.find_one({"_id": user}))["owned_products"] == []
    stored = await purchases.find_purchase(db, "100001", False)
    assert (stored["next_check_at"], stored["revoke_pending"]) == (None, False)  # found and taken back: done


async def test_each_settled_refund_stops_its_own_purchase_checks(db, make_user):
    user = await make_user()
    for invoice in ("100001", "100002"):
        await apply(db, payment(invoice_id=invoice, purchase_id=f"p-{invoice}"), user)
        await apply(db, payment(InvoiceStatus.REFUNDED, invoice_id=invoice, purchase_id=f"p-{invoice}"), user)
        stored = await purchases.find_purchase(db, invoice, False)
        assert (stored["state"], stored["next_check_at"], stored["revoke_pending"]) == ("refunded", None, False)
    assert (await wallet.get_balance(db, user)).balance == 0


async def test_a_one_point_pack_is_credited_as_points_not_as_ownership(db, make_user):
    products = {**PRODUCTS, "points_1": Product("points_1", "consumable", "1 point", "", price=100, points=1)}
    user = await make_user()
    pay = payment(product_id="points_1", amount=100)
    claim = Claim(user_id=user, product_id="points_1", purchase_id=pay.purchase_id)
    outcome = await apply_payment(db, pay, claim=claim, products=products, policy=POLICY, now=NOW, source="test")
    assert outcome.credited_now and outcome.balance == 1 and outcome.purchase["state"] == "confirmed"
    assert "owned_products" not in await db.users.find_one({"_id": user})


def test_only_an_owned_purchase_that_granted_something_counts_as_credited():
    from documents.purchases import is_credited
    owner = ObjectId()
    assert not any(is_credited(doc) for doc in (
        None, {}, {"user_id": None, "granted": {"points": 100}, "state": "confirmed"},
        {"user_id": owner, "state": "pending"}, {"user_id": owner, "state": "refunded"}))
    assert all(is_credited({"user_id": owner, **fields}) for fields in (
        {"granted": {"points": 0}}, {"credit_entry_id": ObjectId()}, {"state": "paid"}, {"state": "confirmed"}))


async def test_a_purchase_of_several_packs_credits_each_pack(db, make_user):
    user = await make_user()
    outcome = await apply(db, payment(quantity=3, amount=3 * 9900), user)
    assert outcome.credited_now and outcome.balance == 300
    assert (await purchases.find_purchase(db, "100001", False))["granted"]["points"] == 300


async def test_a_refund_that_found_nothing_granted_looks_once_more_after_the_recheck_delay(db, make_user):
    from documents.purchases.effects import REVOKE_RECHECK
    user = await make_user()
    await apply(db, payment(InvoiceStatus.REFUNDED), user)
    stored = await purchases.find_purchase(db, "100001", False)
    due = NOW + REVOKE_RECHECK
    stored = {k: (v.replace(tzinfo=UTC) if isinstance(v, datetime) else v) for k, v in stored.items()}
    assert (stored["revoke_pending"], stored["revoke_recheck_at"], stored["next_check_at"]) == (True, due, due)
    later = await apply_payment(db, payment(InvoiceStatus.REFUNDED), claim=None, products=PRODUCTS, policy=POLICY,
                                now=due, source="job")
    assert not later.credited_now
    stored = await purchases.find_purchase(db, "100001", False)
    assert (stored["revoke_pending"], stored["next_check_at"]) == (False, None)


async def test_a_pack_whose_points_changed_since_its_credit_is_not_credited_again(db, make_user):
    # The credit landed but the process died before recording it on the purchase; meanwhile the
    # pack was changed to 150 points.  The next look finds the 100-point credit: that stands.
    user = await make_user()
    await apply(db, payment(), user)
    await db[purchases.COLLECTION].update_one(
        {"invoice_id": "100001"}, {"$unset": {"points": "", "credit_entry_id": "", "granted": ""},
                                   "$set": {"state": "pending"}})
    repriced = {"points_100": replace(PRODUCTS["points_100"], points=150)}
    again = await apply_payment(db, payment(), claim=None, products=repriced, policy=POLICY, now=NOW, source="job")
    assert not again.credited_now and again.balance == 100
    stored = await purchases.find_purchase(db, "100001", False)
    assert stored["points"] == 100 and stored["granted"]["points"] == 100
    assert (await wallet.verify_ledger(db)).ok


async def test_records_of_products_we_do_not_sell_as_one_time_purchases_are_refused_and_change_nothing(db, make_user):
    from documents.billing.ownership import ProductMismatch, UnknownProduct
    products = {**PRODUCTS, "premium_monthly": Product("premium_monthly", "subscription", "Premium", "", price=29900,
                                                       plan="monthly", period_days=30, points_per_period=300)}
    user = await make_user()
    cases = ((payment(product_id="retired_pack"), UnknownProduct, "does not sell"),
             (payment(product_id="premium_monthly"), ProductMismatch, "subscription"))
    for pay, error, words in cases:
        claim = Claim(user_id=user, product_id=pay.product_id, purchase_id=pay.purchase_id)
        with pytest.raises(error, match=words):
            await apply_payment(db, pay, claim=claim, products=products, policy=POLICY, now=NOW, source="test")
    assert await db[purchases.COLLECTION].count_documents({}) == 0
    assert (await wallet.get_balance(db, user)).balance == 0


async def test_the_owners_sdk_purchase_id_is_kept_even_when_the_purchase_was_bound_before_the_app_asked(db, make_user):
    # A two-step hold RuStore reports without its purchaseId (the documented minimal record), bound to
    # its buyer by the appUserId before the app calls verify: the purchaseId the buyer's SDK returned
    # is still stored, as the candidate the hold is confirmed with.
    user = await make_user()
    held = payment(InvoiceStatus.PAID, purchase_id=None, app_user_id=str(user))
    first = await apply(db, held, None, source="job")
    assert first.purchase["user_id"] == user
    claim = Claim(user_id=user, product_id="points_100", purchase_id="sdk-purchase-1")
    outcome = await apply_payment(db, held, claim=claim, products=PRODUCTS, policy=POLICY, now=NOW, source="test")
    stored = await purchases.find_purchase(db, "100001", False)
    assert "sdk-purchase-1" in [c.get("purchase_id") for c in stored.get("claims") or []]
    # ...and is at once the candidate the hold is confirmed with, in the answer and in the store.
    for doc in (outcome.purchase, stored):
        assert (doc["purchase_id"], doc["purchase_id_source"]) == ("sdk-purchase-1", "claim")


async def test_a_confirmed_purchase_is_not_checked_again_however_often_it_is_seen(db, make_user):
    user = await make_user()
    for source in ("test", "webhook", "job"):
        await apply(db, payment(), user if source == "test" else None, source=source)
        stored = await purchases.find_purchase(db, "100001", False)
        assert (stored["state"], stored["next_check_at"], stored["needs_confirmation"]) == ("confirmed", None, False)
    pending = await apply(db, payment(InvoiceStatus.CREATED, invoice_id="100002", purchase_id="p-2"), user)
    assert pending.purchase["state"] == "pending" and not pending.credited_now and pending.balance is None
    assert pending.purchase["next_check_at"].replace(tzinfo=UTC) == NOW + timedelta(minutes=1)


async def test_final_states_stay_as_first_seen_and_a_refund_is_never_queued_for_confirmation(db, make_user):
    user = await make_user()
    await apply(db, payment(InvoiceStatus.CANCELLED), user)
    late = await apply(db, payment(InvoiceStatus.REFUNDED), user)  # another final state of the same rank
    assert late.purchase["state"] == "failed" and (await wallet.get_balance(db, user)).balance == 0
    held = payment(InvoiceStatus.PAID, invoice_id="100002", purchase_id="p-2")
    assert (await apply(db, held, user)).purchase["needs_confirmation"] is True
    await apply(db, replace(held, status=InvoiceStatus.REFUNDED, status_raw="REFUNDED"), user)
    stored = await purchases.find_purchase(db, "100002", False)
    assert (stored["state"], stored["needs_confirmation"]) == ("refunded", False)


async def test_each_unowned_purchase_stops_its_own_checks_until_evidence_names_its_owner(db):
    for invoice in ("100001", "100002"):
        outcome = await apply(db, payment(invoice_id=invoice, purchase_id=f"p-{invoice}"), None, source="job")
        assert outcome.purchase["user_id"] is None and not outcome.credited_now
        stored = await purchases.find_purchase(db, invoice, False)
        assert (stored["user_id"], stored["next_check_at"]) == (None, None)


async def test_each_state_change_is_kept_in_the_purchase_history_with_who_saw_it(db, make_user):
    user = await make_user()
    await apply(db, payment(InvoiceStatus.PAID), user, source="verify")
    await apply(db, payment(InvoiceStatus.CONFIRMED), user, source="webhook")
    await apply(db, payment(InvoiceStatus.CONFIRMED), user, source="job")  # nothing changed: nothing added
    history = (await purchases.find_purchase(db, "100001", False))["history"]
    assert [(h["state"], h["rustore_status"], h["source"], utc(h["at"])) for h in history] == [
        ("paid", "PAID", "verify", NOW), ("confirmed", "CONFIRMED", "webhook", NOW)]


async def test_a_purchase_bound_after_an_unowned_spell_is_followed_again_a_minute_later(db, make_user):
    created = payment(InvoiceStatus.CREATED)  # not final: the job must keep asking once it has an owner
    await apply(db, created, None, source="job")
    assert (await purchases.find_purchase(db, "100001", False))["next_check_at"] is None  # unowned: checks stop
    user = await make_user()
    named = replace(created, app_user_id=str(user))  # RuStore now names our user as the buyer
    later = NOW + timedelta(minutes=5)
    bound = await apply_payment(db, named, claim=None, products=PRODUCTS, policy=POLICY, now=later, source="job")
    assert (bound.purchase["user_id"], utc(bound.purchase["next_check_at"])) == (user, later + timedelta(minutes=1))
    again = await apply_payment(db, named, claim=None, products=PRODUCTS, policy=POLICY,
                                now=later + timedelta(seconds=30), source="job")
    assert utc(again.purchase["next_check_at"]) == later + timedelta(minutes=1)  # owned and scheduled: keeps its time
