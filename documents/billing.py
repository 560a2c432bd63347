"""Rules shared by one-time purchases and subscriptions: who owns a RuStore purchase, and what is refused.

Ownership, strongest evidence first:
1. RuStore's record points at one of our orders (its orderId, or a developerPayload we issued):
   the order's user owns it.
2. RuStore's record carries an appUserId / externalAccountId that is one of our user ids.
3. The purchase is already bound to an account in our database.
4. Otherwise the first account that verifies it (unless REQUIRE_ORDERS is on).
A claim by anyone else is `PurchaseBelongsToAnotherUser` (409). A webhook or a job with no
evidence records the purchase unowned; it is credited when its owner verifies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bson import ObjectId

from documents import orders as orders_doc
from documents.errors import Conflict, Invalid
from documents.users import find_user, parse_id


@dataclass(frozen=True)
class Claim:
    """What a signed-in app says about a purchase; only `user_id` is trusted (it comes from the token)."""

    user_id: ObjectId
    product_id: str | None = None
    purchase_id: str | None = None
    invoice_id: str | None = None
    order_id: str | None = None


@dataclass(frozen=True)
class PurchasePolicy:
    """Deployment rules applied to every RuStore record before it changes anything."""

    app_id: int | None
    allow_sandbox: bool
    require_orders: bool = False
    allow_negative_clawback: bool = False


class PurchaseBelongsToAnotherUser(Conflict):
    """This purchase is bound to another account."""

    reason = "purchase_belongs_to_another_user"


class PurchaseNotFound(Invalid):
    """RuStore does not know this purchase."""

    reason = "purchase_not_found"


class ProductMismatch(Invalid):
    """The product in RuStore's record differs from the one claimed or ordered."""

    reason = "product_mismatch"


class AppMismatch(Invalid):
    """RuStore's record belongs to another application."""

    reason = "app_mismatch"


class SandboxNotAllowed(Invalid):
    """Sandbox (test) purchases are not accepted by this deployment."""

    reason = "sandbox_not_allowed"


class OrderRequired(Invalid):
    """This deployment only accepts purchases started with a server-created order."""

    reason = "order_required"


class UnknownProduct(Invalid):
    """RuStore's record names a product this deployment does not sell."""

    reason = "unknown_product"


class PurchaseMismatch(Invalid):
    """The purchaseId or invoiceId claimed does not match RuStore's record."""

    reason = "purchase_mismatch"


def check_record(policy: PurchasePolicy, *, app_id: int | None, sandbox: bool) -> None:
    """Refuse records of another app, and sandbox records where sandbox is off."""
    if policy.app_id is not None and app_id is not None and app_id != policy.app_id:
        raise AppMismatch("This purchase belongs to another RuStore application.")
    if sandbox and not policy.allow_sandbox:
        raise SandboxNotAllowed("Sandbox purchases are not accepted here.")


async def resolve_owner(
    db: Any, *, claim: Claim | None, policy: PurchasePolicy, bound_to: ObjectId | None,
    order_id: str | None, developer_payload: str | None, app_user_id: str | None, product_id: str | None,
) -> tuple[ObjectId | None, dict | None]:
    """Decide who owns a purchase from RuStore's record; return (owner or None, matching order or None)."""
    order = await orders_doc.find_order_for(db, order_id=order_id, payload=developer_payload)
    if order is not None and product_id and order["product_id"] != product_id:
        raise ProductMismatch("The purchase is for another product than its order.")
    evidence: ObjectId | None = order["user_id"] if order else None
    if evidence is None and app_user_id:
        candidate = parse_id(app_user_id)
        if candidate is not None and await find_user(db, candidate) is not None:
            evidence = candidate
    owner = evidence or bound_to
    if owner is None and claim is not None:
        if policy.require_orders:
            raise OrderRequired("Start purchases with a server order (POST /api/payments/orders).")
        owner = claim.user_id
    if claim is not None and owner != claim.user_id:
        raise PurchaseBelongsToAnotherUser("This purchase belongs to another account.")
    return owner, order
