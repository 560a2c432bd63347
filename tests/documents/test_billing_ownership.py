"""Billing's ownership rule and claim store, on the yielding store (documents/billing/ownership.py)."""

from __future__ import annotations

from bson import ObjectId

from documents.billing.ownership import CLAIMS_KEPT, Claim, store_claim
from documents.purchases.payments import apply_payment
from tests.documents.test_purchases import NOW, POLICY, PRODUCTS, payment


async def test_an_app_user_id_that_names_no_account_binds_nothing(db, make_user):
    await make_user()  # some other account exists; RuStore's appUserId is a well-formed id of nobody
    ghost = payment(purchase_id=None, app_user_id=str(ObjectId()))
    outcome = await apply_payment(db, ghost, claim=None, products=PRODUCTS, policy=POLICY, now=NOW, source="job")
    assert outcome.purchase["user_id"] is None and not outcome.credited_now
    assert not outcome.pending_claim  # nobody claimed it: nothing waits for evidence


async def test_claims_are_kept_once_per_account_and_purchase_id_and_only_the_latest_twenty(db):
    doc_id = (await db["purchases"].insert_one({"invoice_id": "100009", "sandbox": False, "claims": []})).inserted_id
    user = ObjectId()
    for purchase_id in ("a", "a", "b", None, None):  # the same claim twice is one claim; another purchaseId is another
        await store_claim(db, "purchases", doc_id, Claim(user_id=user, purchase_id=purchase_id), NOW)
    claims = (await db["purchases"].find_one({"_id": doc_id}))["claims"]
    assert [(c["user_id"], c["purchase_id"]) for c in claims] == [(user, "a"), (user, "b"), (user, None)]
    for i in range(CLAIMS_KEPT + 5):
        await store_claim(db, "purchases", doc_id, Claim(user_id=user, purchase_id=f"p{i}"), NOW)
    claims = (await db["purchases"].find_one({"_id": doc_id}))["claims"]
    assert [c["purchase_id"] for c in claims] == [f"p{i}" for i in range(5, CLAIMS_KEPT + 5)]
