"""Rules shared by one-time purchases and subscriptions: who owns a RuStore purchase, and what is refused.

`decide_owner` is the one ownership rule (API.md §13). A purchase is bound to an account only by
evidence RuStore returned, strongest first:
1. RuStore's record points at one of our orders (its orderId, or a developerPayload we issued):
   the order's user owns it.
2. RuStore names one of our user ids as the purchase's appUserId (in the record, or by listing the
   purchases of that appUserId).
3. The purchase is already bound to an account in our database (first binding wins).
4. A claim whose purchaseId is one RuStore reported for this purchase (its INVOICE_STATUS
   notification, the purchase list, the record itself; for a Pay SDK subscription, the purchaseId RuStore
   answered for): possession of that unguessable id is the proof. Not with REQUIRE_ORDERS, and never a
   legacy BillingClient `subscriptionToken` (`invoiceId.userId`, guessable): its owner is named only by
   RuStore's record of its first invoice (rules 1 and 2).
A bare invoice id proves nothing, and being first proves nothing: a claim without such evidence is
stored whole (`claims`) and stays pending until evidence arrives; a claim by anyone but the owner
is `PurchaseBelongsToAnotherUser` (409).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument

from documents.accounts import find_user, parse_id
from documents.billing import orders as orders_doc
from documents.common import Conflict, Invalid


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


CLAIMS_KEPT = 20


@dataclass(frozen=True)
class Ownership:
    """What RuStore's answers say about who owns a purchase."""

    order_id: str | None = None
    developer_payload: str | None = None
    app_user_ids: tuple[str, ...] = ()
    product_id: str | None = None
    reported_purchase_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class OwnerDecision:
    """The owner (or None), the order that proved it (or None), and whether a claim waits for evidence."""

    owner: ObjectId | None
    order: dict | None
    pending: bool = False


def claim_entry(claim: Claim, now: datetime) -> dict:
    """A claim as stored on a purchase or subscription document, whole, to be re-checked later."""
    return {"key": f"{claim.user_id}:{claim.purchase_id or ''}", "user_id": claim.user_id,
            "purchase_id": claim.purchase_id, "product_id": claim.product_id, "order_id": claim.order_id,
            "invoice_id": claim.invoice_id, "at": now}


async def store_claim(db: Any, collection: str, doc_id: Any, claim: Claim, now: datetime) -> None:
    """Append a claim to a document once (same account and purchaseId are stored once)."""
    entry = claim_entry(claim, now)
    await db[collection].update_one({"_id": doc_id, "claims.key": {"$ne": entry["key"]}},
                                    {"$push": {"claims": {"$each": [entry], "$slice": -CLAIMS_KEPT}}})


def stored_claims(doc: dict, claimed_key: str | None = None) -> list[dict]:
    """The claims kept on a purchase or subscription document, with a pre-`claims` document's `claimed_by`
    read as a claim of `claimed_key` (the purchaseId it was claimed with; None for an invoice)."""
    stored = list(doc.get("claims") or [])
    if doc.get("claimed_by"):  # a claim stored before claims were kept whole
        stored.append({"user_id": doc["claimed_by"], "purchase_id": claimed_key, "product_id": doc.get("product_id")})
    return stored


async def bind_owner(db: Any, collection: str, doc: dict, owner: ObjectId, claim: Claim | None, *,
                     also: dict | None = None, what: str = "purchase") -> dict:
    """Bind the document to `owner` unless an account is bound already (first binding wins, atomically).

    A claimant who is not the bound owner gets `PurchaseBelongsToAnotherUser`; `also` is merged into the
    binding update (a subscription bumps its revision).
    """
    if doc.get("user_id") == owner:
        return doc
    bound = await db[collection].find_one_and_update(
        {"_id": doc["_id"], "user_id": None}, {"$set": {"user_id": owner}, **(also or {})},
        return_document=ReturnDocument.AFTER)
    bound = bound or await db[collection].find_one({"_id": doc["_id"]})
    if bound["user_id"] != owner and claim is not None:
        raise PurchaseBelongsToAnotherUser(f"This {what} belongs to another account.")
    return bound


def _stored(entry: dict) -> Claim:
    return Claim(user_id=entry["user_id"], product_id=entry.get("product_id"), purchase_id=entry.get("purchase_id"),
                 invoice_id=entry.get("invoice_id"), order_id=entry.get("order_id"))


async def decide_owner(
    db: Any, evidence: Ownership, *, claim: Claim | None, stored_claims: list[dict], bound_to: ObjectId | None,
    policy: PurchasePolicy,
) -> OwnerDecision:
    """The one ownership rule for purchases and subscriptions (see the module docstring)."""
    order = await orders_doc.find_order_for(db, order_id=evidence.order_id, payload=evidence.developer_payload)
    if order is not None and evidence.product_id and order["product_id"] != evidence.product_id:
        raise ProductMismatch("The purchase is for another product than its order.")
    owner: ObjectId | None = order["user_id"] if order else None
    for app_user_id in evidence.app_user_ids:
        if owner is not None:
            break
        candidate = parse_id(app_user_id)
        if candidate is not None and await find_user(db, candidate) is not None:
            owner = candidate
    owner = owner or bound_to
    if owner is None and not policy.require_orders:
        # Possession of a purchaseId RuStore reported for this purchase; the claim's product must match too.
        candidates = ([claim] if claim else []) + [_stored(e) for e in stored_claims]
        for candidate in candidates:
            if (candidate.purchase_id and candidate.purchase_id in evidence.reported_purchase_ids
                    and (not candidate.product_id or not evidence.product_id
                         or candidate.product_id == evidence.product_id)):
                owner = candidate.user_id
                break
    if owner is None and claim is not None and policy.require_orders:
        raise OrderRequired("Start purchases with a server order (POST /api/payments/orders).")
    if claim is not None and owner is not None and owner != claim.user_id:
        raise PurchaseBelongsToAnotherUser("This purchase belongs to another account.")
    return OwnerDecision(owner, order, pending=owner is None and claim is not None)
