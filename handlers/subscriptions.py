"""Subscriptions over HTTP: create (order for the Pay SDK), verify/renew, status, cancel. Rules live in documents/."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import ValidationError, validates_schema

from documents import ledger
from documents import orders as orders_doc
from documents.billing import Claim
from documents.subscription_sync import (
    cancel_subscription,
    refresh_current,
    verify_legacy_subscription,
    verify_subscription,
)
from documents.subscriptions import UNSETTLED, display_status
from documents.users import parse_id
from handlers.base import ApiError, APIHandler
from handlers.schemas import Bool, CamelSchema, Identifier, iso


class CreateSchema(CamelSchema):
    """POST /api/subscriptions/create body."""

    product_id = Identifier(required=True)


class VerifySchema(CamelSchema):
    """What the app got from the Pay SDK (purchaseId) or, for old BillingClient subscriptions, subscriptionToken."""

    purchase_id = Identifier(load_default=None, max_length=64)
    subscription_token = Identifier(load_default=None, max_length=128)
    product_id = Identifier(required=True)
    order_id = Identifier(load_default=None, max_length=150)
    sandbox = Bool(load_default=False)

    @validates_schema
    def _one_identifier(self, data: dict, **kwargs: Any) -> None:
        if (data.get("purchase_id") is None) == (data.get("subscription_token") is None):
            raise ValidationError("Give either purchaseId (Pay SDK) or subscriptionToken (BillingClient).", "_schema")


class CancelSchema(CamelSchema):
    """POST /api/subscriptions/cancel body (empty: the current subscription)."""

    purchase_id = Identifier(load_default=None, max_length=128)


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


class CreateHandler(SubscriptionHandler):
    """POST /api/subscriptions/create — an order the app passes to the Pay SDK (orderId, developerPayload, appUserId)."""

    async def post(self) -> None:
        product = self.subscription_product(self.load(CreateSchema())["product_id"])
        order = await orders_doc.create_order(self.db, parse_id(self.user_id), product.id, "subscription", self.ctx.now())
        self.write_json({"orderId": order["_id"], "developerPayload": order["developer_payload"],
                         "productId": product.id, "appUserId": self.user_id}, 201)


class VerifyHandler(SubscriptionHandler):
    """POST /api/subscriptions/verify — ask RuStore, bind to the caller, grant the paid period once."""

    source = "verify"

    async def post(self) -> None:
        body = self.load(VerifySchema())
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
        if doc.get("status") in UNSETTLED:
            self.write_json({"status": "pending"}, 202)
            return
        balance = outcome.balance
        if balance is None:
            balance = (await ledger.get_balance(self.db, user_id)).balance
        self.write_json(status_view(doc, now) | {"pointsGranted": outcome.points_granted, "balance": balance})


class RenewHandler(VerifyHandler):
    """POST /api/subscriptions/renew — verify a new purchase (e.g. resubscribing after expiry); same path as verify."""

    source = "renew"


class StatusHandler(SubscriptionHandler):
    """GET /api/subscriptions/status — the caller's current subscription, entitlement read from its end date now."""

    async def get(self) -> None:
        now = self.ctx.now()
        current = await refresh_current(self.db, self.ctx.rustore, parse_id(self.user_id), products=self.ctx.products,
                                        policy=self.ctx.purchase_policy, now=now)
        self.write_json(status_view(current, now))


class CancelHandler(SubscriptionHandler):
    """POST /api/subscriptions/cancel — stop renewals at RuStore (S8); access lasts until endDate."""

    async def post(self) -> None:
        body = self.load(CancelSchema())
        now = self.ctx.now()
        outcome = await self.run(cancel_subscription(
            self.db, self.rustore(), parse_id(self.user_id), body["purchase_id"], products=self.ctx.products,
            policy=self.ctx.purchase_policy, now=now,
        ))
        self.write_json(status_view(outcome.subscription, now))


default_handlers = [
    (r"/api/subscriptions/create", CreateHandler),
    (r"/api/subscriptions/verify", VerifyHandler),
    (r"/api/subscriptions/renew", RenewHandler),
    (r"/api/subscriptions/status", StatusHandler),
    (r"/api/subscriptions/cancel", CancelHandler),
]
