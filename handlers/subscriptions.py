"""Subscriptions over HTTP: create (order for the Pay SDK), verify/renew, status, cancel. Rules live in documents/."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import ValidationError, fields, validates_schema

from documents import billing, wallet
from documents.accounts import parse_id
from documents.billing import Claim, period_view
from documents.subscriptions import (
    UNSETTLED,
    cancel_subscription,
    display_status,
    refresh_current,
    verify_legacy_subscription,
    verify_subscription,
)
from handlers.base import ApiError, APIHandler
from handlers.docs import api
from handlers.payments import OrderResultSchema
from handlers.schemas import Bool, CamelSchema, Identifier, iso, present
from handlers.verify_limit import verify_limited

# What display_status can answer, and `none` without a subscription.
STATUSES = ("active", "grace", "paused", "cancelled", "expired", "none")


class SubscriptionCreateSchema(CamelSchema):
    """POST /api/subscriptions/create body."""

    product_id = Identifier(required=True)


class SubscriptionVerifySchema(CamelSchema):
    """What the app got from the Pay SDK (purchaseId) or, for old BillingClient subscriptions, subscriptionToken."""

    purchase_id = Identifier(load_default=None, max_length=64)
    subscription_token = Identifier(load_default=None, max_length=128)
    product_id = Identifier(required=True)
    order_id = Identifier(load_default=None, max_length=150)
    sandbox = Bool(load_default=False)
    OPENAPI_RULES = {"oneOf": [present("purchaseId"), present("subscriptionToken")]}

    @validates_schema
    def _one_identifier(self, data: dict, **kwargs: Any) -> None:
        if (data.get("purchase_id") is None) == (data.get("subscription_token") is None):
            raise ValidationError("Give either purchaseId (Pay SDK) or subscriptionToken (BillingClient).", "_schema")


class SubscriptionCancelSchema(CamelSchema):
    """POST /api/subscriptions/cancel body (empty: the current subscription)."""

    purchase_id = Identifier(load_default=None, max_length=128)


class SubscriptionStatusSchema(CamelSchema):
    """A subscription as the app shows it; entitlement is read from endDate at answer time."""

    status = fields.String(required=True, metadata={"enum": list(STATUSES)})
    plan = fields.String(required=True, allow_none=True)
    product_id = fields.String(required=True, allow_none=True)
    start_date = fields.String(required=True, allow_none=True)
    end_date = fields.String(required=True, allow_none=True)
    auto_renewing = fields.Boolean(required=True)
    sandbox = fields.Boolean(required=True)


class SubscriptionVerifyResultSchema(SubscriptionStatusSchema):
    """A verified subscription, what its current paid period granted and who credited it, and the balance now."""

    points_granted = fields.Integer(required=True, metadata={
        "description": "Points the current paid period (the one ending at endDate) granted, whichever path credited "
                       "it; 0 when it granted nothing (no points per period, grace, trial)"})
    credited_by = fields.String(required=True, allow_none=True, metadata={
        "enum": ["verify", "webhook", "job", None],
        "description": "Who credited the current period first; null when it granted nothing or was credited before "
                       "this field existed"})
    credited_now = fields.Boolean(required=True, metadata={"description": "True if this call credited it"})
    balance = fields.Integer(required=True, metadata={"description": "The wallet's current balance, read after this call"})


class PendingSchema(CamelSchema):
    """RuStore has not settled the payment yet; the server re-checks it and the profile shows it once paid."""

    status = fields.String(required=True, metadata={"enum": ["pending"]})
    balance = fields.Integer(required=True, metadata={"description": "The wallet's current balance"})


RUSTORE_ERRORS = {502: ["rustore_rejected"], 503: ["rustore_unavailable", "rustore_misconfigured", "rustore_not_configured"]}
# What RuStore's record can be refused for (documents/billing/ownership.py, subscription_apply, subscription_sync).
RECORD_ERRORS = ["purchase_not_found", "purchase_mismatch", "product_mismatch", "unknown_product", "not_a_subscription_product",
                 "app_mismatch", "sandbox_not_allowed"]
VERIFY_ERRORS = {**RUSTORE_ERRORS, 400: [*RECORD_ERRORS, "order_required"], 409: ["purchase_belongs_to_another_user"]}
CANCEL_ERRORS = {**RUSTORE_ERRORS, 400: RECORD_ERRORS, 404: ["subscription_not_found"],
                 409: ["cancel_not_supported", "subscription_not_active"]}


def status_view(summary: dict | None, now: datetime) -> dict:
    """The public shape of a subscription (a stored document or `users.subscription`); status `none` without one."""
    if summary is None:
        return {"status": "none", "plan": None, "productId": None, "startDate": None, "endDate": None,
                "autoRenewing": False, "sandbox": False}
    return {
        "status": display_status(summary.get("status"), summary.get("end_date"), now, summary.get("auto_renewing")),
        "plan": summary.get("plan"), "productId": summary.get("product_id"),
        "startDate": iso(summary.get("start_date")), "endDate": iso(summary.get("end_date")),
        "autoRenewing": bool(summary.get("auto_renewing")), "sandbox": bool(summary.get("sandbox")),
    }


def profile_subscription(user: dict, now: datetime) -> dict | None:
    """The profile's `subscription`: the same object as GET /api/subscriptions/status, or null if the user never had one."""
    summary = user.get("subscription")
    return None if summary is None else status_view(summary, now)


class SubscriptionHandler(APIHandler):
    """Shared pieces: the RuStore client (503 when unconfigured) and the caller's id."""

    def rustore(self) -> Any:
        if self.ctx.rustore is None:
            raise ApiError(503, "rustore_not_configured", "RuStore is not configured on this server.")
        return self.ctx.rustore

    def subscription_product(self, product_id: str) -> Any:
        product = self.ctx.products.get(product_id)
        if product is None or not product.is_subscription:
            raise ApiError(400, "not_a_subscription_product", "productId is not a subscription sold here.")
        return product


class SubscriptionCreateHandler(SubscriptionHandler):
    """POST /api/subscriptions/create — an order the app passes to the Pay SDK (orderId, developerPayload, appUserId)."""

    @api("Create an order for the Pay SDK subscription purchase", body=SubscriptionCreateSchema,
         responses={201: OrderResultSchema}, errors={400: ["not_a_subscription_product"]})
    async def post(self) -> None:
        product = self.subscription_product(self.load()["product_id"])
        order = await billing.create_order(self.db, parse_id(self.user_id), product.id, "subscription", self.ctx.now())
        self.write_json({"orderId": order["_id"], "developerPayload": order["developer_payload"],
                         "productId": product.id, "appUserId": self.user_id}, 201)


class SubscriptionVerifyHandler(SubscriptionHandler):
    """POST /api/subscriptions/verify — ask RuStore, bind to the caller, grant the paid period once."""

    source = "verify"

    @verify_limited
    @api("Verify a subscription with RuStore and grant its paid period once", body=SubscriptionVerifySchema,
         responses={200: SubscriptionVerifyResultSchema, 202: PendingSchema}, errors=VERIFY_ERRORS)
    async def post(self) -> None:
        await self.verify()

    async def verify(self) -> None:
        """Shared by verify and renew: the same checks, the same answers."""
        body = self.load()
        self.subscription_product(body["product_id"])
        client, now, user_id = self.rustore(), self.ctx.now(), parse_id(self.user_id)
        key = body["purchase_id"] or body["subscription_token"]
        claim = Claim(user_id=user_id, product_id=body["product_id"], purchase_id=key, order_id=body["order_id"])
        verify = verify_subscription if body["purchase_id"] else verify_legacy_subscription
        outcome = await self.run(verify(
            self.db, client, key, body["product_id"], sandbox=body["sandbox"], claim=claim, products=self.ctx.products,
            policy=self.ctx.purchase_policy, now=now, source=self.source,
        ))
        doc = outcome.subscription
        if doc.get("status") in UNSETTLED or doc.get("user_id") != user_id:
            # Not paid yet, or no evidence from RuStore names the caller yet (a legacy token alone proves nothing).
            self.write_json({"status": "pending", "balance": (await wallet.get_balance(self.db, user_id)).balance}, 202)
            return
        # The document was written after the grant, so its period records are current.
        points, credited_by = period_view(doc)
        # This call's own credit answers the balance it wrote; anything else reads the wallet now (never the
        # balance right after an older credit).
        balance = outcome.balance if outcome.points_granted > 0 else None
        if balance is None:
            balance = (await wallet.get_balance(self.db, user_id)).balance
        self.write_json(status_view(doc, now) | {"pointsGranted": points, "creditedBy": credited_by,
                                                 "creditedNow": outcome.points_granted > 0, "balance": balance})


class SubscriptionRenewHandler(SubscriptionVerifyHandler):
    """POST /api/subscriptions/renew — verify a new purchase (e.g. resubscribing after expiry); same path as verify."""

    source = "renew"

    @verify_limited
    @api("Verify a renewal or resubscription (same as verify)", body=SubscriptionVerifySchema,
         responses={200: SubscriptionVerifyResultSchema, 202: PendingSchema}, errors=VERIFY_ERRORS)
    async def post(self) -> None:
        await self.verify()


class SubscriptionStatusHandler(SubscriptionHandler):
    """GET /api/subscriptions/status — the caller's current subscription, entitlement read from its end date now."""

    @api("Your current subscription (status `none` without one)", responses={200: SubscriptionStatusSchema})
    async def get(self) -> None:
        now = self.ctx.now()
        current = await refresh_current(self.db, self.ctx.rustore, parse_id(self.user_id), products=self.ctx.products,
                                        policy=self.ctx.purchase_policy, now=now)
        self.write_json(status_view(current, now))


class SubscriptionCancelHandler(SubscriptionHandler):
    """POST /api/subscriptions/cancel — stop renewals at RuStore (S8); access lasts until endDate."""

    @api("Stop renewals at RuStore; access lasts until endDate", body=SubscriptionCancelSchema,
         responses={200: SubscriptionStatusSchema}, errors=CANCEL_ERRORS)
    async def post(self) -> None:
        body = self.load()
        now = self.ctx.now()
        outcome = await self.run(cancel_subscription(
            self.db, self.rustore(), parse_id(self.user_id), body["purchase_id"], products=self.ctx.products,
            policy=self.ctx.purchase_policy, now=now,
        ))
        self.write_json(status_view(outcome.subscription, now))


default_handlers = [
    (r"/api/subscriptions/create", SubscriptionCreateHandler),
    (r"/api/subscriptions/verify", SubscriptionVerifyHandler),
    (r"/api/subscriptions/renew", SubscriptionRenewHandler),
    (r"/api/subscriptions/status", SubscriptionStatusHandler),
    (r"/api/subscriptions/cancel", SubscriptionCancelHandler),
]
