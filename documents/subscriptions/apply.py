"""Applies one RuStore answer about a subscription: record, bind the owner, grant the paid period, store the state.

Steps, each safe to repeat (design in `documents.subscriptions.store`): (1) refuse records of another app,
sandbox where it is off, products we do not sell; (2) upsert the document by (purchase_id, sandbox),
only `$setOnInsert`; (3) decide the owner with `billing.decide_owner` (the rule purchases use too;
RuStore answering for the purchaseId is what the claim's purchaseId is checked against) and bind
it first-wins; (4) if
the answer shows a paid period, credit it under its period key; (5) write the state unless a newer
answer is stored; (6) copy the user's current subscription onto the user. After (4), refunds recorded
meanwhile are settled (`subscriptions.refunds`). A crash between any two steps leaves `next_check_at`
set, so the next check (job, webhook, the app retrying) redoes them with the same keys: nothing is
granted twice and nothing paid is lost.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from loguru import logger
from pymongo import ReturnDocument

from core.metrics import SUBSCRIPTION_STATUS_CHANGES
from documents import wallet
from documents.billing import (
    Claim,
    Ownership,
    PurchasePolicy,
    bind_owner,
    check_subscription,
    decide_owner,
    mark_order_used,
    origin_of,
    recorded_origin,
    store_claim,
    stored_claims,
)
from documents.common import upsert_unique, utc
from documents.subscriptions.refunds import invoice_of_order, settle_refunds
from documents.subscriptions.store import (
    COLLECTION,
    RETRY,
    SubscriptionOutcome,
    grant_key,
    is_paid_period,
    next_check,
    project_user,
)
from rustore import Payment, Subscription

HISTORY_KEPT = 50
LEGACY_TOKEN = re.compile(r"\d+\.\d+")  # BillingClient subscriptionToken: invoiceId.userId (API.md §8.1)
GRANTS_KEPT = 60


def _new_document(source: str, token: str | None, product: Any, now: datetime) -> dict:
    return {"source": source, "subscription_token": token, "product_id": product.id, "plan": product.plan,
            "user_id": None, "claimed_by": None, "status": "PENDING", "auto_renewing": None, "start_date": None,
            "end_date": None, "acknowledged": False, "ack_attempts": 0, "observed_at": None, "revision": 0,
            "check_attempts": 0, "granted_periods": [], "history": [], "created_at": now}


async def _upsert(db: Any, key: str, sandbox: bool, insert: dict, changes: dict | None = None) -> dict:
    update: dict[str, Any] = {"$setOnInsert": insert}
    if changes:
        update["$set"] = changes
    return await upsert_unique(db, COLLECTION, {"purchase_id": key, "sandbox": sandbox}, update)


async def record_claim(db: Any, key: str, sandbox: bool, claim: Claim, product: Any, now: datetime, error: str,
                       *, legacy: bool = False) -> dict:
    """Remember an unverified claim (RuStore unreachable), whole, so the job re-checks it against RuStore soon.

    Stored even when a webhook created the document first; nothing is bound until RuStore answers.
    """
    source, token = ("billing", key) if legacy else ("pay", None)
    doc = await _upsert(db, key, sandbox, _new_document(source, token, product, now),
                        {"next_check_at": now, "last_error": error, "updated_at": now})
    await store_claim(db, COLLECTION, doc["_id"], claim, now)
    return await db[COLLECTION].find_one({"_id": doc["_id"]}) or doc


async def _grant(db: Any, doc: dict, sub: Subscription, product: Any, now: datetime,
                 source: str | None = None) -> tuple[int, int | None]:
    """Credit the paid period's points; (points credited by this call, balance after it or None)."""
    points = int(product.points_per_period or 0)
    if points <= 0:
        return 0, None
    end = utc(sub.expiry_time)
    key = grant_key(doc["purchase_id"], doc["sandbox"], end)
    # The period is recorded BEFORE its credit, so a refund of its charge always finds it (see
    # `subscriptions.refunds`); the ledger key is what makes the grant exactly-once.
    period = {"key": key, "end_date": end, "points": points, "entry_id": None, "at": now, "order_id": sub.order_id,
              "invoice_id": invoice_of_order(sub.order_id)}
    await db[COLLECTION].update_one({"_id": doc["_id"], "granted_periods.key": {"$ne": key}},
                                    {"$push": {"granted_periods": {"$each": [period], "$slice": -GRANTS_KEPT}}})
    try:
        result = await wallet.credit(
            db, doc["user_id"], points, "subscription_grant", key, reference=f"subscription:{doc['purchase_id']}",
            meta={"purchase_id": doc["purchase_id"], "product_id": product.id, "period_end": end,
                  "sandbox": doc["sandbox"], "credited_by": origin_of(source)}, now=now,
        )
    except wallet.IdempotencyKeyMismatch as exc:  # granted earlier under another points_per_period setting: still once
        result = wallet.LedgerResult(exc.entry, exc.entry.balance_after, True)
    await db[COLLECTION].update_one(
        {"_id": doc["_id"], "granted_periods": {"$elemMatch": {"key": key, "entry_id": None}}},
        {"$set": {"granted_periods.$.entry_id": result.entry.id,
                  "granted_periods.$.credited_by": recorded_origin(result.entry.meta, source)}},
    )
    return (0, None) if result.replayed else (points, result.balance)


def _differs(doc: dict, state: dict) -> bool:
    def norm(value: Any) -> Any:
        return utc(value) if isinstance(value, datetime) else value

    return any(norm(doc.get(k)) != norm(v) for k, v in state.items())


async def _write_state(db: Any, doc: dict, sub: Subscription, now: datetime, source: str) -> dict:
    """Store RuStore's answer unless a newer one is already stored; schedule the next check."""
    state = {"status": sub.status.value, "auto_renewing": sub.auto_renewing, "start_date": sub.start_time,
             "end_date": sub.expiry_time}
    fields = state | {"payment_state": sub.payment_state, "rustore_order_id": sub.order_id, "observed_at": now,
                      "last_checked_at": now, "check_attempts": 0, "last_error": None, "updated_at": now}
    if sub.acknowledged:
        fields["acknowledged"] = True  # never set back: our own S7 call may be newer than this answer
    if doc.get("user_id"):
        fields["claimed_by"] = None
    # A final owned one keeps a check until `apply_subscription` has shown it on its user (crash safety).
    fields["next_check_at"] = next_check(doc | fields, now) or (now + RETRY if doc.get("user_id") else None)
    update: dict[str, Any] = {"$set": fields, "$inc": {"revision": 1}}
    if _differs(doc, state):
        entry = {"at": now, "status": state["status"], "end_date": sub.expiry_time,
                 "auto_renewing": sub.auto_renewing, "source": source}
        update["$push"] = {"history": {"$each": [entry], "$slice": -HISTORY_KEPT}}
    written = await db[COLLECTION].find_one_and_update(
        {"_id": doc["_id"], "$or": [{"observed_at": None}, {"observed_at": {"$lte": now}}]}, update,
        return_document=ReturnDocument.AFTER,
    )
    if written is None:
        logger.info("stale subscription answer not applied", purchase_id=doc["purchase_id"], source=source)
        return await db[COLLECTION].find_one({"_id": doc["_id"]})
    if doc.get("status") != state["status"]:
        SUBSCRIPTION_STATUS_CHANGES.labels(state["status"]).inc()
    return written


async def apply_subscription(
    db: Any, sub: Subscription, *, claim: Claim | None, products: Mapping[str, Any], policy: PurchasePolicy,
    now: datetime, source: str, first_charge: Payment | None = None,
) -> SubscriptionOutcome:
    """Record RuStore's view of a subscription, bind its owner, grant its paid period once, show it on the user.

    `first_charge` is RuStore's payment record of a legacy token (P1): with the subscription's own record,
    the only evidence of its owner.
    """
    product = check_subscription(policy, products, sub, claim)
    key, kind = (sub.subscription_token, "billing") if sub.subscription_token else (str(sub.purchase_id), "pay")
    doc = await _upsert(db, key, sub.sandbox,
                        _new_document(kind, sub.subscription_token, product, now) | {"next_check_at": now + RETRY})
    if claim is not None and not claim.purchase_id:
        claim = replace(claim, purchase_id=key)  # the claimant presented this key: RuStore answered for it
    stored = stored_claims(doc, key)
    if doc.get("source") == "billing" or LEGACY_TOKEN.fullmatch(key):
        kind = "billing"  # a legacy token presented as a purchaseId is still only a guessable token
    if kind == "pay":
        # RuStore answered for this purchaseId (an unguessable UUID): a claim presenting it possesses it.
        evidence = Ownership(order_id=sub.order_id, developer_payload=sub.developer_payload,
                             app_user_ids=(sub.app_user_id,) if sub.app_user_id else (), product_id=sub.product_id,
                             reported_purchase_ids=frozenset({key}))
    else:
        # A legacy token (`invoiceId.userId`) is guessable: presenting it proves nothing. Only RuStore's records can
        # name the owner (our order, our developerPayload, our user id as appUserId): its payment's (P1), else its own.
        charge = first_charge
        evidence = Ownership(order_id=(charge.order_id if charge else None) or sub.order_id,
                             developer_payload=(charge.developer_payload if charge else None) or sub.developer_payload,
                             app_user_ids=tuple(dict.fromkeys(
                                 x for x in (charge.app_user_id if charge else None, sub.app_user_id) if x)),
                             product_id=sub.product_id)
    decision = await decide_owner(db, evidence, claim=claim, stored_claims=stored, bound_to=doc.get("user_id"),
                                  policy=policy)
    owner, order = decision.owner, decision.order
    if owner is not None:
        doc = await bind_owner(db, COLLECTION, doc, owner, claim, also={"$inc": {"revision": 1}},
                               what="subscription")
        if order is not None:
            await mark_order_used(db, order["_id"], purchase_id=key)
    granted, balance, taken = 0, None, 0
    if doc.get("user_id") and is_paid_period(sub):
        granted, balance = await _grant(db, doc, sub, product, now, source)
        # Re-read the refunds after crediting: one recorded while we credited is ours to take back.
        taken, clawed_balance = await settle_refunds(db, doc["_id"], policy, now)
        balance = balance if clawed_balance is None else clawed_balance
    doc = await _write_state(db, doc, sub, now, source)
    if doc.get("user_id"):
        await project_user(db, doc["user_id"], now)
        if next_check(doc, now) is None:  # final and shown: nothing left for the job
            await db[COLLECTION].update_one({"_id": doc["_id"], "revision": doc["revision"]},
                                            {"$set": {"next_check_at": None}})
    return SubscriptionOutcome(doc, granted, balance, taken)
