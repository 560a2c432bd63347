"""The emulator's in-memory world: apps, products, invoices, subscriptions and id counters."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rustore.emulator.clock import Clock
from rustore.emulator.config import EmulatorApp, EmulatorProduct
from rustore.emulator.errors import EmulatorError, not_found
from rustore.emulator.records import Invoice, SubscriptionRecord, iso

Notify = Callable[[EmulatorApp, str, dict[str, Any], bool], object]


@dataclass
class Timing:
    """Durations of RuStore's automatic transitions (API.md §2.1, §3.1, §3.10)."""

    hold_timeout: timedelta = timedelta(hours=6)
    sandbox_period: timedelta = timedelta(minutes=10)
    sandbox_max_charges: int = 12
    charge_retry_interval: timedelta = timedelta(days=1)


class Store:
    """Holds every record; sandbox and real records live side by side but are never served crosswise."""

    def __init__(self, clock: Clock, notify: Notify, timing: Timing) -> None:
        self.clock = clock
        self.timing = timing
        self._notify = notify
        self.apps: dict[int, EmulatorApp] = {}
        self.products: dict[int, dict[str, EmulatorProduct]] = {}
        self.invoices: dict[int, Invoice] = {}
        self.subscriptions: dict[str, SubscriptionRecord] = {}
        self._invoice_ids = itertools.count(100001)
        self._user_ids: dict[tuple[int, str | None], int] = {}
        self.invoice_listeners: list[Callable[[Invoice, datetime], None]] = []

    def add_app(self, app: EmulatorApp) -> None:
        """Register an application (replacing one with the same id)."""
        self.apps[app.app_id] = app
        self.products.setdefault(app.app_id, {})

    def app(self, app_id: int) -> EmulatorApp:
        """The app or RuStore-style 404."""
        app = self.apps.get(app_id)
        if app is None:
            raise not_found("Application not found")
        return app

    def app_by_package(self, package_name: str) -> EmulatorApp:
        """The app with this Android package name or 404."""
        for app in self.apps.values():
            if app.package_name == package_name:
                return app
        raise not_found("Application not found")

    def add_product(self, app_id: int, product: EmulatorProduct) -> EmulatorProduct:
        """Create or replace a product in an app's catalog."""
        self.app(app_id)
        self.products[app_id][product.product_id] = product
        return product

    def product(self, app_id: int, product_id: str) -> EmulatorProduct:
        """A product or the SDK's 40005 error."""
        product = self.products.get(app_id, {}).get(product_id)
        if product is None:
            raise EmulatorError(404, "Product not found", code="NOT_FOUND", error_code=40005)
        return product

    def invoice(self, invoice_id: Any, sandbox: bool | None = None) -> Invoice:
        """Invoice by id, optionally only from one environment."""
        try:
            invoice = self.invoices.get(int(str(invoice_id)))
        except ValueError:
            invoice = None
        if invoice is None or (sandbox is not None and invoice.sandbox != sandbox):
            raise not_found("Invoice not found")
        return invoice

    def purchase(self, app_id: int, purchase_id: str, sandbox: bool) -> Invoice:
        """The one-time purchase (its invoice) with this purchaseId."""
        for invoice in self.invoices.values():
            if (invoice.purchase_id == purchase_id and invoice.app_id == app_id and invoice.sandbox == sandbox
                    and invoice.subscription_id is None):
                return invoice
        raise not_found("Purchase not found")

    def subscription(self, purchase_id: str, sandbox: bool | None = None) -> SubscriptionRecord:
        """Subscription by purchaseId, optionally only from one environment."""
        record = self.subscriptions.get(purchase_id)
        if record is None or (sandbox is not None and record.sandbox != sandbox):
            raise not_found("Subscription not found for given purchaseId")
        return record

    def subscription_by_token(self, token: str, sandbox: bool) -> SubscriptionRecord:
        """Legacy subscription by `subscriptionToken`."""
        for record in self.subscriptions.values():
            if record.token == token and record.sandbox == sandbox:
                return record
        raise not_found("Subscription not found")

    def new_invoice_id(self) -> int:
        """Next numeric invoice id."""
        return next(self._invoice_ids)

    def user_id(self, app_id: int, app_user_id: str | None) -> int:
        """Stable RuStore user number per app user (the part after the dot in tokens)."""
        key = (app_id, app_user_id)
        if key not in self._user_ids:
            self._user_ids[key] = 500 + len(self._user_ids)
        return self._user_ids[key]

    def emit(self, app_id: int, kind: str, data: dict[str, Any], sandbox: bool) -> None:
        """Queue a notification; sandbox records use the `_SANDBOX` type and the sandbox URL/key."""
        self._notify(self.apps[app_id], kind + ("_SANDBOX" if sandbox else ""), data, sandbox)

    def changed_invoice(self, invoice: Invoice, old: str, at: datetime) -> None:
        """Record a status change, notify (RuStore sends none for CREATED) and tell listeners."""
        invoice.history.append({"at": iso(at), "from": old, "to": invoice.status})
        if invoice.status != "CREATED":
            data = {
                "change_status_time": iso(at),
                "product_code": invoice.product.product_id,
                "status_new": invoice.status,
                "status_old": old,
                "purchase_token": invoice.purchase_token,
                "invoice_id": str(invoice.invoice_id),
                "order_id": invoice.order_id,
                "purchase_id": invoice.purchase_id,
            }
            self.emit(invoice.app_id, "INVOICE_STATUS", data, invoice.sandbox)
        for listener in self.invoice_listeners:
            listener(invoice, at)
