"""RuStore Public API endpoints served by the emulator (paths and envelopes as in API.md §0-4)."""

from __future__ import annotations

import base64
from datetime import date
from typing import Any

from rustore.emulator import purchases, subscriptions, views
from rustore.emulator.errors import EmulatorError, bad_request, not_found
from rustore.emulator.records import SubscriptionRecord
from rustore.emulator.web import RuStoreHandler
from rustore.values import MOSCOW

SB = r"/public(?:/sandbox)?"
ID = r"([^/:]+)"


class AuthHandler(RuStoreHandler):
    """A1 POST /public/auth/ (with or without the trailing slash)."""

    endpoint = "auth"
    needs_token = False

    def post(self) -> None:
        token, ttl = self.emulator.keys.authenticate(self.json_body(), self.emulator.clock.now())
        self.ok({"jwe": token, "ttl": ttl})


class PaymentV2Handler(RuStoreHandler):
    """P3 GET /public[/sandbox]/v2/purchase/{invoiceId}."""

    endpoint = "payment_v2"

    def get(self, invoice_id: str) -> None:
        invoice = self.emulator.store.invoice(invoice_id, self.sandbox)
        self.require_app(invoice.app_id, not_found("Invoice not found"))
        self.ok(views.payment_record(invoice, self.emulator.store.app(invoice.app_id), self.emulator.record_shape))


class PaymentsListHandler(RuStoreHandler):
    """P4 GET /public[/sandbox]/applications/{appId}/invoices (sandbox twin UNCONFIRMED)."""

    endpoint = "payments_list"

    def get(self, app_id: str) -> None:
        app = self.emulator.store.app(int(app_id))
        self.require_app(app.app_id)
        # Accept both repeated and comma-separated arrays, any case (encoding UNCONFIRMED).
        wanted = {s.strip().upper() for raw in self.get_query_arguments("invoiceStatuses") for s in raw.split(",")}
        wanted.discard("")
        try:
            day = date.fromisoformat(self.get_query_argument("invoiceDate", ""))
            page, size = int(self.get_query_argument("pageNumber", "0")), int(self.get_query_argument("pageSize", "20"))
        except ValueError:
            raise bad_request("Bad request") from None
        if not wanted or page < 0 or size < 1:
            raise bad_request("Bad request")
        matches = sorted(
            (i for i in self.emulator.store.invoices.values()
             if i.app_id == app.app_id and i.sandbox == self.sandbox and i.status in wanted
             and i.invoice_date.astimezone(MOSCOW).date() == day),
            key=lambda i: i.invoice_id,
        )
        content = [views.payment_record(i, app, self.emulator.record_shape) for i in matches[page * size:(page + 1) * size]]
        self.ok({"content": content, "pageNumber": page, "pageSize": size, "totalElements": len(matches),
                 "totalPages": (len(matches) + size - 1) // size})


class PurchasesByUserHandler(RuStoreHandler):
    """GET /public[/sandbox]/applications/{appId}/purchases?appUserId=... (API.md §13; envelope ASSUMED).

    Lists the one-time purchases made with that appUserId, with their purchaseId.
    """

    endpoint = "purchases_by_user"

    def get(self, app_id: str) -> None:
        app = self.emulator.store.app(int(app_id))
        self.require_app(app.app_id)
        app_user_id = self.get_query_argument("appUserId", "")
        if not app_user_id:
            raise bad_request("appUserId is required")
        matches = sorted(
            (i for i in self.emulator.store.invoices.values()
             if i.app_id == app.app_id and i.sandbox == self.sandbox and i.app_user_id == app_user_id
             and i.subscription_id is None),
            key=lambda i: i.invoice_id,
        )
        self.ok({"purchases": [views.purchase_list_item(i) for i in matches]})


class _TwoStepHandler(RuStoreHandler):
    confirm = True

    def put(self, app_id: str, purchase_id: str) -> None:
        store = self.emulator.store
        self.require_app(store.app(int(app_id)).app_id)
        purchases.settle_two_step(store, store.purchase(int(app_id), purchase_id, self.sandbox), self.confirm)
        self.ok({})


class ConfirmHandler(_TwoStepHandler):
    """P5 PUT .../applications/{appId}/purchases/{purchaseId}:confirm."""

    endpoint = "purchase_confirm"


class CancelHandler(_TwoStepHandler):
    """P6 PUT .../applications/{appId}/purchases/{purchaseId}:cancel."""

    endpoint = "purchase_cancel"
    confirm = False


class RefundHandler(RuStoreHandler):
    """P7 PATCH .../applications/{appId}/invoices/{invoiceId}."""

    endpoint = "invoice_refund"

    def patch(self, app_id: str, invoice_id: str) -> None:
        store = self.emulator.store
        self.require_app(store.app(int(app_id)).app_id)
        invoice = store.invoice(invoice_id, self.sandbox)
        if invoice.app_id != int(app_id):
            raise not_found("Invoice not found")
        purchases.refund(store, invoice)
        self.ok({})


class _SubscriptionHandler(RuStoreHandler):
    def record(self, package: str, product_id: str, purchase_id: str, missing: str) -> SubscriptionRecord:
        app = self.emulator.store.app_by_package(package)
        self.require_app(app.app_id, not_found(missing))
        try:
            record = self.emulator.store.subscription(purchase_id, self.sandbox)
        except EmulatorError:
            raise not_found(missing) from None
        # V4/ack work only for Pay SDK subscriptions that were ever paid (API.md §3.6).
        if (record.app_id != app.app_id or record.product.product_id != product_id or record.sdk != "pay"
                or record.status == "EXPIRED"):
            raise not_found(missing)
        return record


class SubscriptionV4Handler(_SubscriptionHandler):
    """S5 GET /public[/sandbox]/v4/subscription/{packageName}/{subscriptionId}/{purchaseId}."""

    endpoint = "subscription_v4"

    def get(self, package: str, product_id: str, purchase_id: str) -> None:
        record = self.record(package, product_id, purchase_id, "Subscription not found")
        self.ok(views.subscription_v3(record, v4=True))


class SubscriptionAckHandler(_SubscriptionHandler):
    """S7 POST /public[/sandbox]/v2/subscription/{packageName}/{subscriptionId}/{purchaseId}:acknowledge."""

    endpoint = "subscription_ack"

    def post(self, package: str, product_id: str, purchase_id: str) -> None:
        # Repeated acknowledgements succeed (idempotency UNCONFIRMED).
        self.record(package, product_id, purchase_id, "Purchase not found").acknowledged = True
        self.ok(None)


class SubscriptionCancelHandler(RuStoreHandler):
    """S8 PATCH /public[/sandbox]/v1/applications/{appId}/subscriptions/{purchaseId}:cancel."""

    endpoint = "subscription_cancel"

    def patch(self, app_id: str, purchase_id: str) -> None:
        store = self.emulator.store
        self.require_app(store.app(int(app_id)).app_id)
        record = store.subscription(purchase_id, self.sandbox)
        if record.app_id != int(app_id) or record.sdk != "pay":
            raise not_found("Subscription not found for given purchaseId")
        subscriptions.cancel(store, record, by_developer=True)
        self.ok(None)


class _CatalogHandler(RuStoreHandler):
    """C1/C2 catalog listing with continuation paging (the token is opaque Base64 of an offset)."""

    kind = "products"

    def get(self, app_id: str) -> None:
        app = self.emulator.store.app(int(app_id))
        self.require_app(app.app_id)
        types = {t.lower() for raw in self.get_query_arguments("productType") for t in raw.split(",") if t}
        if self.kind == "products":
            if not types or not types <= {"consumable", "non-consumable"}:
                raise bad_request("Bad request")
        else:
            types = {"subscription"}
        statuses = {s.lower() for raw in self.get_query_arguments("status") for s in raw.split(",") if s}
        only = self.get_query_argument("productId", None)
        try:
            limit = int(self.get_query_argument("limit", "20"))
            token = self.get_query_argument("continuationToken", None)
            offset = int(base64.b64decode(token).decode().split(":")[1]) if token else 0
        except (ValueError, IndexError, UnicodeDecodeError):
            raise bad_request("Bad request") from None
        if not 1 <= limit <= 500:
            raise bad_request("Bad request")
        items = [p for p in self.emulator.store.products[app.app_id].values()
                 if p.product_type in types and (not statuses or p.status in statuses)
                 and (only is None or p.product_id == only)]
        page = items[offset:offset + limit]
        more = offset + limit < len(items)
        self.ok({"totalElementsCount": len(items), "elementsCount": len(page),
                 "continuationToken": base64.b64encode(f"offset:{offset + limit}".encode()).decode() if more else None,
                 "elements": [views.catalog_element(p) for p in page]})


class CatalogProductsHandler(_CatalogHandler):
    """C1 GET /public/applications/{appId}/catalog/products (productType required)."""

    endpoint = "catalog_products"


class CatalogSubscriptionsHandler(_CatalogHandler):
    """C2 GET /public/applications/{appId}/catalog/subscriptions."""

    endpoint = "catalog_subscriptions"
    kind = "subscriptions"


class LegacyPaymentHandler(RuStoreHandler):
    """P1 GET /public[/sandbox]/purchase/{purchaseToken} (BillingClient purchases only)."""

    endpoint = "legacy_payment"

    def get(self, token: str) -> None:
        store = self.emulator.store
        for invoice in store.invoices.values():
            if invoice.purchase_token == token and invoice.sandbox == self.sandbox and invoice.sdk == "billing":
                self.require_app(invoice.app_id, not_found("Invoice not found"))
                self.ok(views.payment_v1(invoice, store.app(invoice.app_id)))
                return
        raise not_found("Invoice not found")


class _LegacySubscriptionHandler(RuStoreHandler):
    def legacy_record(self, token: str) -> SubscriptionRecord:
        record = self.emulator.store.subscription_by_token(token, self.sandbox)
        if record.sdk != "billing":
            raise not_found("Subscription not found")
        self.require_app(record.app_id, not_found("Subscription not found"))
        return record


class LegacySubscriptionV1Handler(_LegacySubscriptionHandler):
    """S1 GET /public[/sandbox]/subscription/{subscriptionToken}: doubly wrapped."""

    endpoint = "legacy_subscription_v1"

    def get(self, token: str) -> None:
        record = self.legacy_record(token)
        self.ok({"code": 200, "success": True, "message": "", "body": views.subscription_v1(record)})


class LegacySubscriptionV3Handler(_LegacySubscriptionHandler):
    """S4 GET /public[/sandbox]/v3/subscription/{packageName}/{subscriptionId}/{token}: unwrapped on success."""

    endpoint = "legacy_subscription_v3"

    def get(self, package: str, product_id: str, token: str) -> None:
        record = self.legacy_record(token)
        if record.product.product_id != product_id or self.emulator.store.app_by_package(package).app_id != record.app_id:
            raise not_found("Subscription not found")
        self.ok(views.subscription_v3(record, v4=False), wrap=False)


def routes(emulator: Any) -> list[tuple[str, type, dict[str, Any]]]:
    """URL table of the Public API part."""
    kw = {"emulator": emulator}
    return [
        (r"/public/auth/?", AuthHandler, kw),
        (SB + r"/v2/purchase/" + ID, PaymentV2Handler, kw),
        (SB + r"/applications/(\d+)/invoices", PaymentsListHandler, kw),
        (SB + r"/applications/(\d+)/purchases", PurchasesByUserHandler, kw),
        (SB + r"/applications/(\d+)/purchases/" + ID + ":confirm", ConfirmHandler, kw),
        (SB + r"/applications/(\d+)/purchases/" + ID + ":cancel", CancelHandler, kw),
        (SB + r"/applications/(\d+)/invoices/" + ID, RefundHandler, kw),
        (SB + r"/v4/subscription/" + ID + "/" + ID + "/" + ID, SubscriptionV4Handler, kw),
        (SB + r"/v2/subscription/" + ID + "/" + ID + "/" + ID + ":acknowledge", SubscriptionAckHandler, kw),
        (SB + r"/v1/applications/(\d+)/subscriptions/" + ID + ":cancel", SubscriptionCancelHandler, kw),
        (r"/public/applications/(\d+)/catalog/products", CatalogProductsHandler, kw),
        (r"/public/applications/(\d+)/catalog/subscriptions", CatalogSubscriptionsHandler, kw),
        (SB + r"/purchase/" + ID, LegacyPaymentHandler, kw),
        (SB + r"/subscription/" + ID, LegacySubscriptionV1Handler, kw),
        (SB + r"/v3/subscription/" + ID + "/" + ID + "/" + ID, LegacySubscriptionV3Handler, kw),
    ]
