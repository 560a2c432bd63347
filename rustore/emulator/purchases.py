"""One-time purchase state machine (API.md §2.1) and the SDK-side purchase simulation (§8.2)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from rustore.emulator.config import EmulatorProduct
from rustore.emulator.errors import EmulatorError, bad_request
from rustore.emulator.records import Invoice
from rustore.emulator.state import Store

TRANSITIONS: dict[str, set[str]] = {
    "CREATED": {"EXECUTED", "CANCELLED", "REJECTED", "EXPIRED"},
    "EXECUTED": {"PAID", "CONFIRMED", "CANCELLED", "REJECTED", "EXPIRED"},
    "PAID": {"CONFIRMED", "REVERSED"},
    "CONFIRMED": {"REFUNDED"},
}
OUTCOMES = ("success", "pending", "executing", "cancelled", "rejected", "expired")
ACTIONS = ("execute", "pay", "confirm", "reverse", "cancel", "reject", "expire", "refund")


def move(store: Store, invoice: Invoice, new: str, at: datetime) -> None:
    """Change status if RuStore's state machine allows it; error 40015 otherwise."""
    old = invoice.status
    if new not in TRANSITIONS.get(old, set()):
        raise EmulatorError(409, f"Forbidden status transition {old} -> {new}", error_code=40015)
    invoice.status = new
    if new in ("PAID", "CONFIRMED") and invoice.payment_date is None:
        invoice.payment_date = at
    if new == "PAID":
        invoice.paid_at = at
    if new == "REFUNDED":
        invoice.refund_date = at
    store.changed_invoice(invoice, old, at)


def create_invoice(
    store: Store, app_id: int, product: EmulatorProduct, *, sandbox: bool, sdk: str, user_id: int,
    purchase_id: str, order_id: str, purchase_type: str = "ONE_STEP", quantity: int = 1,
    amount: int | None = None, developer_payload: str | None = None, app_user_id: str | None = None,
    app_user_email: str | None = None, subscription_id: str | None = None, at: datetime | None = None,
) -> Invoice:
    """A new invoice in CREATED (dated `at`, default now)."""
    invoice = Invoice(
        invoice_id=store.new_invoice_id(), app_id=app_id, product=product, purchase_id=purchase_id,
        order_id=order_id, purchase_type=purchase_type, quantity=quantity,
        amount=product.price * quantity if amount is None else amount, user_id=user_id, sandbox=sandbox,
        sdk=sdk, invoice_date=at or store.clock.now(), developer_payload=developer_payload, app_user_id=app_user_id,
        app_user_email=app_user_email, subscription_id=subscription_id,
    )
    store.invoices[invoice.invoice_id] = invoice
    store.changed_invoice(invoice, "", invoice.invoice_date)
    return invoice


def check_order_id(store: Store, app_id: int, order_id: str) -> None:
    """orderId must be unique per app (SDK error 40008)."""
    if len(order_id) > 150:
        raise bad_request("orderId must be at most 150 characters", 40001)
    if any(i.app_id == app_id and i.order_id == order_id for i in store.invoices.values()):
        raise EmulatorError(409, "Purchase with this order_id already exists", error_code=40008)


def simulate_purchase(store: Store, app_id: int, params: dict[str, Any]) -> dict[str, Any]:
    """What the Pay SDK's `purchase()` does for a one-time product; returns its ProductPurchaseResult."""
    product = store.product(app_id, str(params.get("productId") or ""))
    if product.status != "active":
        raise bad_request("Product is inactive", 40006)
    if product.product_type == "subscription":
        raise bad_request("Product type is subscription; simulate a subscription instead", 40007)
    quantity = int(params.get("quantity") or 1)
    if quantity < 1 or (quantity > 1 and product.product_type != "consumable"):
        raise bad_request("Quantity above 1 is allowed only for consumables", 40016)
    purchase_type = str(params.get("purchaseType") or "ONE_STEP").upper().replace("-", "_")
    if purchase_type not in ("ONE_STEP", "TWO_STEP"):
        raise bad_request("purchaseType must be ONE_STEP or TWO_STEP", 40001)
    outcome = str(params.get("outcome") or "success").lower()
    if outcome not in OUTCOMES:
        raise bad_request(f"outcome must be one of {', '.join(OUTCOMES)}", 40001)
    sandbox = bool(params.get("sandbox", False))
    app_user_id = _opt(params.get("appUserId"))
    user_id = store.user_id(app_id, app_user_id)
    order_id = _opt(params.get("orderId")) or str(uuid.uuid4())
    check_order_id(store, app_id, order_id)
    for other in store.invoices.values():
        same = (other.app_id, other.product.product_id, other.user_id, other.sandbox) == (
            app_id, product.product_id, user_id, sandbox)
        if same and product.product_type == "consumable" and other.status == "PAID":
            raise bad_request("Consumable product is already paid; confirm it first", 40010)
        if same and product.product_type == "non-consumable" and other.status == "CONFIRMED":
            raise bad_request("Non-consumable product is already purchased", 40011)
    invoice = create_invoice(
        store, app_id, product, sandbox=sandbox, sdk=str(params.get("sdk") or "pay"), user_id=user_id,
        purchase_id=str(uuid.uuid4()), order_id=order_id, purchase_type=purchase_type, quantity=quantity,
        developer_payload=_opt(params.get("developerPayload")), app_user_id=app_user_id,
        app_user_email=_opt(params.get("appUserEmail")),
    )
    drive(store, invoice, outcome)
    return sdk_result(invoice)


def drive(store: Store, invoice: Invoice, outcome: str, at: datetime | None = None) -> None:
    """Walk a fresh invoice to the state the payment sheet would leave it in."""
    at = at or store.clock.now()
    if outcome == "pending":
        return
    if outcome in ("cancelled", "expired"):
        move(store, invoice, outcome.upper(), at)
        return
    move(store, invoice, "EXECUTED", at)
    if outcome == "rejected":
        move(store, invoice, "REJECTED", at)
    elif outcome == "success":
        move(store, invoice, "PAID" if invoice.purchase_type == "TWO_STEP" else "CONFIRMED", at)


def apply_action(store: Store, invoice: Invoice, action: str) -> Invoice:
    """Control-API transitions: execute, pay, confirm, reverse, cancel, reject, expire, refund."""
    at = store.clock.now()
    if action not in ACTIONS:
        raise bad_request(f"action must be one of {', '.join(ACTIONS)}")
    if action == "pay":
        if invoice.status == "CREATED":
            move(store, invoice, "EXECUTED", at)
        move(store, invoice, "PAID" if invoice.purchase_type == "TWO_STEP" else "CONFIRMED", at)
    else:
        target = {"execute": "EXECUTED", "confirm": "CONFIRMED", "reverse": "REVERSED", "cancel": "CANCELLED",
                  "reject": "REJECTED", "expire": "EXPIRED", "refund": "REFUNDED"}[action]
        if action in ("confirm", "reverse") and invoice.status != "PAID":
            raise bad_request("Purchase status must be PAID")
        if action == "refund":
            refund(store, invoice)
            return invoice
        move(store, invoice, target, at)
    return invoice


def settle_two_step(store: Store, invoice: Invoice, confirm: bool) -> None:
    """P5/P6: confirm or release a hold; only from PAID, with RuStore's message."""
    if invoice.status != "PAID":
        raise bad_request("Purchase status must be PAID")
    move(store, invoice, "CONFIRMED" if confirm else "REVERSED", store.clock.now())


def refund(store: Store, invoice: Invoice) -> None:
    """P7 full refund with the documented messages."""
    if invoice.status == "REFUNDED":
        raise bad_request("Invoice has already been refunded")
    if invoice.status != "CONFIRMED":
        raise bad_request("Invoice status must be CONFIRMED")
    move(store, invoice, "REFUNDED", store.clock.now())


def earliest_hold(store: Store) -> tuple[datetime, Invoice] | None:
    """The PAID hold that times out first, with its deadline (RuStore reverses it then, §2.1)."""
    holds = [(d, i) for i in store.invoices.values() if (d := i.hold_deadline(store.timing.hold_timeout))]
    return min(holds, key=lambda pair: pair[0]) if holds else None


def sdk_result(invoice: Invoice) -> dict[str, Any]:
    """Pay SDK ProductPurchaseResult plus emulator extras (`invoiceStatus`, `subscriptionToken`, `amount`)."""
    return {
        "purchaseId": invoice.purchase_id,
        "invoiceId": str(invoice.invoice_id),
        "orderId": invoice.order_id,
        "productId": invoice.product.product_id,
        "productType": invoice.product.product_type.upper().replace("-", "_"),
        "purchaseType": invoice.purchase_type,
        "quantity": invoice.quantity,
        "sandbox": invoice.sandbox,
        "invoiceStatus": invoice.status,
        "subscriptionToken": invoice.purchase_token,
        "amount": invoice.amount,
    }


def _opt(value: Any) -> str | None:
    return None if value in (None, "") else str(value)
