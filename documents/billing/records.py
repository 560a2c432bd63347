"""The one place that decides whether a RuStore record may change anything, and which kind of purchase it is.

Every record passes one of these before it is applied: a one-time payment (P3) in `check_payment`,
a subscription (S1/S4/S5) in `check_subscription`, a refund of a purchase we credited in
`check_refund`, a notification in `check_notification`. The deployment's `PurchasePolicy` decides the
application and sandbox rules; the catalog decides the kind (`is_subscription`): a product sold as a
subscription is verified only as one, everything else only as a one-time purchase.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from documents.billing.ownership import (
    AppMismatch,
    Claim,
    ProductMismatch,
    PurchasePolicy,
    SandboxNotAllowed,
    UnknownProduct,
)
from documents.common import Invalid
from rustore import Payment, Subscription
from rustore.values import pick, to_int


class NotASubscriptionProduct(Invalid):
    """The product is not a subscription this deployment sells."""

    reason = "not_a_subscription_product"


def check_record(policy: PurchasePolicy, *, app_id: int | None, sandbox: bool) -> None:
    """Refuse records of another app, and sandbox records where sandbox is off."""
    if policy.app_id is not None and app_id is not None and app_id != policy.app_id:
        raise AppMismatch("This purchase belongs to another RuStore application.")
    if sandbox and not policy.allow_sandbox:
        raise SandboxNotAllowed("Sandbox purchases are not accepted here.")


def is_subscription(products: Mapping[str, Any], product_id: str | None) -> bool:
    """True when the catalog sells this product as a subscription (the one-time-or-subscription decision)."""
    product = products.get(product_id or "")
    return product is not None and bool(product.is_subscription)


def _sold(products: Mapping[str, Any], product_id: str | None) -> Any:
    product = products.get(product_id or "")
    if product is None:
        raise UnknownProduct(f"RuStore reports product {product_id!r}, which this app does not sell.")
    return product


def subscription_product(products: Mapping[str, Any], product_id: str | None) -> Any:
    """The catalog product of a subscription; refuses products we do not sell or that are not subscriptions."""
    product = _sold(products, product_id)
    if not is_subscription(products, product_id):
        raise NotASubscriptionProduct(f"{product_id!r} is not a subscription; use /api/payments/verify.")
    return product


def check_payment(policy: PurchasePolicy, products: Mapping[str, Any], payment: Payment, claim: Claim | None) -> Any:
    """A one-time payment record: this app, sandbox allowed, a product we sell as one-time, the one claimed."""
    check_record(policy, app_id=payment.app_id, sandbox=payment.sandbox)
    product = _sold(products, payment.product_id)
    if is_subscription(products, payment.product_id):
        raise ProductMismatch("This is a subscription; verify it with /api/subscriptions/verify.")
    if claim is not None and claim.product_id and claim.product_id != payment.product_id:
        raise ProductMismatch("The purchase is for another product than the one claimed.")
    return product


def check_refund(policy: PurchasePolicy, payment: Payment) -> None:
    """A refund of a purchase we credited: only the application is checked (sandbox and catalog may have changed)."""
    check_record(replace(policy, allow_sandbox=True), app_id=payment.app_id, sandbox=payment.sandbox)


def check_subscription_request(policy: PurchasePolicy, products: Mapping[str, Any], product_id: str | None,
                               *, sandbox: bool) -> Any:
    """Before asking RuStore about a subscription: refuse what its answer could not make acceptable."""
    product = subscription_product(products, product_id)
    check_record(policy, app_id=None, sandbox=sandbox)
    return product


def check_subscription(policy: PurchasePolicy, products: Mapping[str, Any], sub: Subscription,
                       claim: Claim | None) -> Any:
    """A subscription record: this app, sandbox allowed, a product we sell as a subscription, the one claimed."""
    check_record(policy, app_id=to_int(pick(sub.raw, "appId", "applicationId")), sandbox=sub.sandbox)
    product = subscription_product(products, sub.product_id)
    if claim is not None and claim.product_id and claim.product_id != sub.product_id:
        raise ProductMismatch("The subscription is for another product than the one claimed.")
    return product


def check_notification(policy: PurchasePolicy, *, app_id: int | None, sandbox: bool) -> None:
    """A notification about a purchase we have not credited: this app, sandbox allowed."""
    check_record(policy, app_id=app_id, sandbox=sandbox)
