"""Asks RuStore about a subscription and applies its answer: shared by verify, renew, cancel, status, webhooks, the job.

`verify_subscription` (Pay SDK, S5) and `verify_legacy_subscription` (BillingClient token: S4, then S1)
fetch RuStore's record, apply it with `subscriptions.apply.apply_subscription`, then acknowledge it at
RuStore (S7) once, after the period's points are safely credited. RuStore unreachable (or refusing our
credentials) during a user's verify: the claim is recorded and the job completes it (a user who paid
never loses the grant). A failed acknowledgement never fails the request; the job retries it with
backoff. The signature of `verify_subscription` is a contract with the webhook processor (it calls it
with `claim=None`, and with the `invoice_id` of a subscription's INVOICE_STATUS notification: that
charge is then fetched (P3) and linked to the period it paid for, or, refunded, clawed back).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from bson import ObjectId
from loguru import logger

from documents.billing import Claim, PurchaseMismatch, PurchaseNotFound, PurchasePolicy, check_subscription_request
from documents.common import DomainError, utc
from documents.subscriptions.apply import apply_subscription, record_claim
from documents.subscriptions.refunds import apply_charge
from documents.subscriptions.store import (
    ENTITLED,
    CancelNotSupported,
    SubscriptionNotActive,
    SubscriptionNotFound,
    SubscriptionOutcome,
    display_status,
    find_current,
    find_subscription,
    get_user_subscription,
    mark_acknowledged,
    note_check_failure,
    renewal_lagging,
)
from rustore import (
    Payment,
    RuStoreAuthError,
    RuStoreError,
    RuStoreNotFound,
    RuStoreRejected,
    RuStoreUnavailable,
    Subscription,
)


async def verify_subscription(
    db: Any, client: Any, purchase_id: str, product_id: str, *, sandbox: bool, claim: Claim | None,
    products: Mapping[str, Any], policy: PurchasePolicy, now: datetime, source: str, invoice_id: str | None = None,
) -> SubscriptionOutcome:
    """Fetch a Pay SDK subscription (S5), apply it, apply one of its charges if named, acknowledge it once (S7)."""
    return await _verify(db, client, purchase_id, product_id, legacy=False, sandbox=sandbox, claim=claim,
                         products=products, policy=policy, now=now, source=source, invoice_id=invoice_id)


async def verify_legacy_subscription(
    db: Any, client: Any, subscription_token: str, product_id: str, *, sandbox: bool, claim: Claim | None,
    products: Mapping[str, Any], policy: PurchasePolicy, now: datetime, source: str,
) -> SubscriptionOutcome:
    """Same for a pre-migration BillingClient `subscriptionToken` (S4, or S1 when S4 does not know it)."""
    return await _verify(db, client, subscription_token, product_id, legacy=True, sandbox=sandbox, claim=claim,
                         products=products, policy=policy, now=now, source=source)


async def sync_subscription(
    db: Any, client: Any, doc: dict, *, products: Mapping[str, Any], policy: PurchasePolicy, now: datetime,
    source: str,
) -> SubscriptionOutcome:
    """Re-check one stored subscription at RuStore (Pay SDK or legacy) on nobody's claim."""
    verify = verify_legacy_subscription if doc.get("source") == "billing" else verify_subscription
    return await verify(db, client, doc["purchase_id"], doc["product_id"], sandbox=doc["sandbox"], claim=None,
                        products=products, policy=policy, now=now, source=source)


async def _fetch(client: Any, key: str, product_id: str, *, legacy: bool, sandbox: bool) -> Subscription:
    try:
        if not legacy:
            return await client.get_subscription(product_id, key, sandbox=sandbox)
        try:
            return await client.get_legacy_subscription(key, product_id, sandbox=sandbox)
        except RuStoreNotFound:
            return await client.get_legacy_subscription(key, None, sandbox=sandbox)
    except RuStoreNotFound:
        raise PurchaseNotFound("RuStore does not know this subscription.") from None


async def _first_charge(db: Any, client: Any, token: str, sub: Subscription, *, sandbox: bool) -> Payment | None:
    """RuStore's payment record of a legacy token (P1, by the token itself), while the subscription has no owner.

    A BillingClient `subscriptionToken` is `invoiceId.userId`: guessable, so presenting it proves nothing.
    P1 is RuStore's documented lookup by that token (API.md §2.2) and its `invoice.order.order_id` is the
    orderId the app started the subscription with: that is the evidence of its owner. None when there is
    nothing to learn (already bound, not a token, RuStore does not know it or will not show it, or it is
    another invoice or product).
    """
    doc = await find_subscription(db, token, sandbox)
    invoice_id = token.split(".", 1)[0]
    if (doc is not None and doc.get("user_id") is not None) or not invoice_id.isdigit():
        return None
    try:
        payment = await client.get_legacy_payment(token, sandbox=sandbox)
    except RuStoreNotFound:
        return None
    except RuStoreRejected as exc:  # RuStore will not show this payment: no evidence, but the subscription is still real
        logger.info("legacy token's payment refused by RuStore", invoice_id=invoice_id, message=exc.message)
        return None
    if str(payment.invoice_id) != invoice_id or (payment.product_id and payment.product_id != sub.product_id):
        logger.warning("legacy token's payment is not this subscription's first charge", invoice_id=invoice_id)
        return None
    return payment


async def _verify(
    db: Any, client: Any, key: str, product_id: str, *, legacy: bool, sandbox: bool, claim: Claim | None,
    products: Mapping[str, Any], policy: PurchasePolicy, now: datetime, source: str, invoice_id: str | None = None,
) -> SubscriptionOutcome:
    product = check_subscription_request(policy, products, product_id, sandbox=sandbox)  # no call for what is refused anyway
    try:
        sub = await _fetch(client, key, product_id, legacy=legacy, sandbox=sandbox)
        first_charge = await _first_charge(db, client, key, sub, sandbox=sandbox) if legacy else None
    except (RuStoreUnavailable, RuStoreAuthError) as exc:
        # Neither says anything about the subscription: keep the claim so the job finishes it later.
        if claim is not None:
            await record_claim(db, key, sandbox, claim, product, now, type(exc).__name__, legacy=legacy)
        raise
    if not legacy and sub.purchase_id != key:
        raise PurchaseMismatch("RuStore answered for another subscription.")
    outcome = await apply_subscription(db, sub, claim=claim, products=products, policy=policy, now=now, source=source,
                                       first_charge=first_charge)
    if invoice_id is not None:
        outcome = await _apply_charge(db, client, outcome, invoice_id, policy=policy, now=now, source=source)
    return await _acknowledge(db, client, outcome, now)


async def _apply_charge(db: Any, client: Any, outcome: SubscriptionOutcome, invoice_id: str, *,
                        policy: PurchasePolicy, now: datetime, source: str) -> SubscriptionOutcome:
    """Ask RuStore about one charge of the subscription (P3) and apply it: link it, or take back a refunded one."""
    doc = outcome.subscription
    try:
        payment = await client.get_payment(invoice_id, sandbox=doc["sandbox"])
    except RuStoreNotFound:
        raise PurchaseNotFound("RuStore does not know this invoice.") from None
    # A notification names the invoice and the subscription; RuStore's record must agree on both.
    if (str(payment.invoice_id) != str(invoice_id) or (payment.product_id and payment.product_id != doc["product_id"])
            or (doc.get("source") == "pay" and payment.purchase_id and payment.purchase_id != doc["purchase_id"])):
        raise PurchaseMismatch("RuStore's invoice is not a charge of this subscription.")
    taken, balance = await apply_charge(db, doc["_id"], payment, policy=policy, now=now, source=source)
    if not taken and balance is None:
        return outcome
    fresh = await find_subscription(db, doc["purchase_id"], doc["sandbox"]) or doc
    return replace(outcome, subscription=fresh, points_clawed_back=outcome.points_clawed_back + taken,
                   balance=outcome.balance if balance is None else balance)


async def _acknowledge(db: Any, client: Any, outcome: SubscriptionOutcome, now: datetime) -> SubscriptionOutcome:
    """S7 for an owned, entitled Pay SDK subscription not yet acknowledged (BillingClient's S6 is deprecated)."""
    doc = outcome.subscription
    if doc.get("source") != "pay" or doc.get("acknowledged") or not doc.get("user_id") or doc.get("status") not in ENTITLED:
        return outcome
    try:
        await client.acknowledge_subscription(doc["product_id"], doc["purchase_id"], sandbox=doc["sandbox"])
    except RuStoreError as exc:
        # Optional for RuStore and never worth failing the user's request: the job retries with backoff.
        logger.info("subscription acknowledgement failed", purchase_id=doc["purchase_id"], error=type(exc).__name__)
        await note_check_failure(db, doc, now, f"acknowledge: {type(exc).__name__}", ack=True,
                                 outage=getattr(exc, "outage", False))
        return outcome
    return replace(outcome, subscription=await mark_acknowledged(db, doc, now))


async def cancel_subscription(
    db: Any, client: Any, user_id: ObjectId, key: str | None, *, products: Mapping[str, Any], policy: PurchasePolicy,
    now: datetime, even_if_ended: bool = False,
) -> SubscriptionOutcome:
    """Developer cancel (S8) of one of the user's subscriptions (default: the current one), then apply RuStore's record.

    `even_if_ended` asks RuStore even when our copy says it ended (account deletion: RuStore may have renewed since).
    """
    if key is None:
        current = await find_current(db, user_id)
        if current is None:
            raise SubscriptionNotFound("This account has no subscription.")
        doc = await get_user_subscription(db, user_id, current["purchase_id"], current["sandbox"])
    else:
        doc = await get_user_subscription(db, user_id, key)
    if doc.get("source") != "pay":
        raise CancelNotSupported("BillingClient subscriptions can only be cancelled by the user in the RuStore app.")
    if not even_if_ended and display_status(doc.get("status"), doc.get("end_date"), now,
                                            doc.get("auto_renewing")) in ("expired", "none"):
        raise SubscriptionNotActive("This subscription is not running.")
    refused: RuStoreRejected | None = None
    try:
        await client.cancel_subscription(doc["purchase_id"], sandbox=doc["sandbox"])
    except RuStoreNotFound:
        raise SubscriptionNotFound("RuStore does not know this subscription.") from None
    except RuStoreRejected as exc:
        refused = exc  # e.g. cancelled already: RuStore's record below decides
    outcome = await sync_subscription(db, client, doc, products=products, policy=policy, now=now, source="cancel")
    if refused is not None and outcome.subscription.get("auto_renewing"):
        raise refused
    return outcome


def may_have_changed(current: Mapping[str, Any] | None, now: datetime) -> bool:
    """True when RuStore may show the user something new: a renewing period ended, a hold, a renewal lagging."""
    if not current:
        return False
    status, end = current.get("status"), current.get("end_date")
    if status == "PAUSED":
        return True
    if status in ENTITLED:
        return bool(current.get("auto_renewing")) and end is not None and utc(end) <= now
    return renewal_lagging(current, now)


async def refresh_current(
    db: Any, client: Any, user_id: ObjectId, *, products: Mapping[str, Any], policy: PurchasePolicy, now: datetime,
) -> dict | None:
    """The user's current subscription, re-checked at RuStore first when its next check is due (best effort).

    Reads follow the job's schedule (`next_check_at`), so a renewal shows the moment its period ends
    while reads never call RuStore more often than the job would, even during an outage.
    """
    current = await find_current(db, user_id)
    if client is None or not may_have_changed(current, now):
        return current
    doc = await find_subscription(db, current["purchase_id"], current["sandbox"])
    if doc is None or doc.get("next_check_at") is None or utc(doc["next_check_at"]) > now:
        return current
    try:
        await sync_subscription(db, client, doc, products=products, policy=policy, now=now, source="status")
    except (RuStoreError, DomainError) as exc:
        logger.info("subscription refresh failed; answering from the stored state", error=type(exc).__name__)
        await note_check_failure(db, doc, now, f"status refresh: {type(exc).__name__}", outage=getattr(exc, "outage", False))
        return current
    return await find_current(db, user_id)
