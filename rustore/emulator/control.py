"""The `/_emulator/` control API: set the world up, act as the user and the clock, inspect the outcome."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rustore.emulator.config import EmulatorApp, EmulatorProduct
from rustore.emulator.errors import bad_request
from rustore.emulator.web import ControlHandler

P = "/_emulator"


def _field(data: Any, name: str) -> Any:
    if not isinstance(data, dict) or data.get(name) in (None, ""):
        raise bad_request(f"`{name}` is required")
    return data[name]


class StateHandler(ControlHandler):
    """GET: apps, products, invoices, subscriptions and the clock."""

    def get(self) -> None:
        self.send_json(self.emulator.state_view())


class StatsHandler(ControlHandler):
    """GET: how many requests each RuStore endpoint received (e.g. `auth`)."""

    def get(self) -> None:
        self.send_json({"calls": dict(self.emulator.stats)})


class ClockHandler(ControlHandler):
    """GET the time; POST `{"advanceSeconds": n}` or `{"now": iso}` and run due transitions."""

    def get(self) -> None:
        self.send_json({"now": self.emulator.clock.now().isoformat()})

    def post(self) -> None:
        body = self.json_body()
        try:
            if "now" in body:
                now = self.emulator.set_clock(datetime.fromisoformat(str(body["now"])))
            else:
                now = self.emulator.advance_clock(float(_field(body, "advanceSeconds")))
        except (TypeError, ValueError) as exc:
            raise bad_request(str(exc)) from None
        self.send_json({"now": now.isoformat()})


class AppsHandler(ControlHandler):
    """POST: add an application (`appId`, `packageName`, optional key and webhook settings)."""

    def post(self) -> None:
        body = self.json_body()
        app = EmulatorApp(
            app_id=int(_field(body, "appId")), package_name=str(_field(body, "packageName")),
            key_id=body.get("keyId"), public_key=body.get("publicKey"),
            notification_url=body.get("notificationUrl"), notification_key_b64=body.get("notificationKey"),
            sandbox_notification_url=body.get("sandboxNotificationUrl"),
            sandbox_notification_key_b64=body.get("sandboxNotificationKey"),
        )
        self.emulator.add_app(app)
        self.send_json(app.public_view(), 201)


class KeysHandler(ControlHandler):
    """POST: register an API key (`keyId`, `publicKey` PEM/Base64 DER, optional `appIds`, `sandbox`)."""

    def post(self) -> None:
        body = self.json_body()
        app_ids = body.get("appIds")
        try:
            self.emulator.register_key(str(_field(body, "keyId")), _field(body, "publicKey"),
                                       set(map(int, app_ids)) if app_ids else None, bool(body.get("sandbox", True)))
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        self.send_json({"keyId": str(body["keyId"])}, 201)


class KeyDisableHandler(ControlHandler):
    """POST: disable a key, as deleting it in the console does."""

    def post(self, key_id: str) -> None:
        self.emulator.disable_key(key_id)
        self.send_json({"keyId": key_id, "disabled": True})


class TokensExpireHandler(ControlHandler):
    """POST: make every issued token expire now."""

    def post(self) -> None:
        self.send_json({"expired": self.emulator.expire_tokens()})


class ProductsHandler(ControlHandler):
    """GET the app's products; POST one (`productId`, `productType`, `price` in kopecks, `periodSeconds`...)."""

    def get(self, app_id: str) -> None:
        self.send_json([p.view() for p in self.emulator.store.products.get(int(app_id), {}).values()])

    def post(self, app_id: str) -> None:
        try:
            product = EmulatorProduct.from_json(self.json_body())
        except (KeyError, TypeError, ValueError) as exc:
            raise bad_request(f"bad product: {exc}") from None
        self.send_json(self.emulator.add_product(int(app_id), product).view(), 201)


class PurchasesHandler(ControlHandler):
    """POST: the user buys a one-time product; answers what the Pay SDK returns to the app."""

    def post(self, app_id: str) -> None:
        self.send_json(self.emulator.simulate_purchase_json(int(app_id), self.json_body()), 201)


class SubscribeHandler(ControlHandler):
    """POST: the user buys a subscription; answers what the Pay SDK returns to the app."""

    def post(self, app_id: str) -> None:
        self.send_json(self.emulator.simulate_subscription_json(int(app_id), self.json_body()), 201)


class InvoiceHandler(ControlHandler):
    """GET an invoice; POST `/{action}`: execute, pay, confirm, reverse, cancel, reject, expire, refund."""

    def get(self, invoice_id: str) -> None:
        self.send_json(self.emulator.store.invoice(invoice_id).view())

    def post(self, invoice_id: str, action: str) -> None:
        self.send_json(self.emulator.invoice_action(int(invoice_id), action))


class SubscriptionHandler(ControlHandler):
    """GET a subscription; POST `/renew`, `/cancel` (by the user) or `/renewal-outcome` `{"outcome"}`."""

    def get(self, purchase_id: str) -> None:
        self.send_json(self.emulator.store.subscription(purchase_id).view())

    def post(self, purchase_id: str, action: str) -> None:
        outcome = self.json_body().get("outcome") if action == "renewal-outcome" else None
        self.send_json(self.emulator.subscription_action(purchase_id, action, outcome=outcome))


class NotificationsHandler(ControlHandler):
    """GET every notification generated (plaintext content, delivery state)."""

    def get(self) -> None:
        self.send_json(self.emulator.notifications())


class PingNotificationHandler(ControlHandler):
    """POST `{"appId", "sandbox"}`: send TEST_EVENT like the console's "Check" button."""

    def post(self) -> None:
        body = self.json_body()
        self.send_json(self.emulator.send_test_notification(int(_field(body, "appId")), bool(body.get("sandbox"))))


class StatusCaseHandler(ControlHandler):
    """PUT `{"case": "lower"|"upper"}`: spelling of statuses in INVOICE_STATUS notifications."""

    def put(self) -> None:
        case = str(self.json_body().get("case", "upper")).lower()
        if case not in ("lower", "upper"):
            raise bad_request("case must be lower or upper")
        self.emulator.notifier.status_case = case
        self.send_json({"case": case})


class RecordShapeHandler(ControlHandler):
    """GET or PUT `{"shape": "minimal"|"rich"}`: the field set of P3/P4 payment records."""

    def get(self) -> None:
        self.send_json({"shape": self.emulator.record_shape})

    def put(self) -> None:
        self.send_json({"shape": self.emulator.set_record_shape(str(self.json_body().get("shape", "")))})


class DeliveriesHandler(ControlHandler):
    """GET the log of every webhook delivery attempt."""

    def get(self) -> None:
        self.send_json(self.emulator.deliveries())


class FaultsHandler(ControlHandler):
    """GET active faults; POST `{"endpoint", "mode", "delaySeconds"?, "status"?, "count"?, "match"?}`; DELETE all."""

    def get(self) -> None:
        self.send_json(self.emulator.faults.list())

    def post(self) -> None:
        body = self.json_body()
        fault = self.emulator.faults.set(str(_field(body, "endpoint")), str(_field(body, "mode")),
                                         delay_s=body.get("delaySeconds"), status=body.get("status"),
                                         count=body.get("count"), match=body.get("match"))
        self.send_json(fault.view(), 201)

    def delete(self, endpoint: str | None = None) -> None:
        self.emulator.faults.clear(endpoint)
        self.send_json(self.emulator.faults.list())


def routes(emulator: Any) -> list[tuple[str, type, dict[str, Any]]]:
    """URL table of the control API."""
    kw = {"emulator": emulator}
    return [
        (P + "/state", StateHandler, kw),
        (P + "/stats", StatsHandler, kw),
        (P + "/clock", ClockHandler, kw),
        (P + "/apps", AppsHandler, kw),
        (P + "/keys", KeysHandler, kw),
        (P + r"/keys/([^/]+)/disable", KeyDisableHandler, kw),
        (P + "/tokens/expire", TokensExpireHandler, kw),
        (P + r"/apps/(\d+)/products", ProductsHandler, kw),
        (P + r"/apps/(\d+)/purchases", PurchasesHandler, kw),
        (P + r"/apps/(\d+)/subscriptions", SubscribeHandler, kw),
        (P + r"/invoices/(\d+)", InvoiceHandler, kw),
        (P + r"/invoices/(\d+)/([a-z-]+)", InvoiceHandler, kw),
        (P + r"/subscriptions/([^/]+)", SubscriptionHandler, kw),
        (P + r"/subscriptions/([^/]+)/([a-z-]+)", SubscriptionHandler, kw),
        (P + "/notifications", NotificationsHandler, kw),
        (P + "/notifications/test", PingNotificationHandler, kw),
        (P + "/notifications/status-case", StatusCaseHandler, kw),
        (P + "/record-shape", RecordShapeHandler, kw),
        (P + "/deliveries", DeliveriesHandler, kw),
        (P + "/faults", FaultsHandler, kw),
        (P + r"/faults/([^/]+)", FaultsHandler, kw),
    ]
