"""Turn RuStore response bodies (documented, legacy and emulator shapes) into value objects.

Field lookup is deliberately tolerant because most bodies are only partly documented (API.md §2.4,
§3.6, §4.1): each value is searched under camelCase, snake_case and nested spellings, and a
missing value becomes None rather than an error. The decoded body is always kept in `raw`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rustore.models import (
    CatalogItem,
    InvoiceStatus,
    Payment,
    ProductType,
    Subscription,
    SubscriptionStatus,
)
from rustore.values import micros_to_kopecks, parse_time, pick, to_bool, to_int, to_kopecks, to_str

_ORDERS = ("order", "paymentInfo.order", "invoice.order")


def _in_order(*names: str) -> tuple[str, ...]:
    return tuple(f"{prefix}.{name}" for prefix in _ORDERS for name in names)


def parse_payment(body: dict[str, Any], *, sandbox: bool) -> Payment:
    """Payment from a P3/P4 (camelCase) or P1 (snake_case) body; `sandbox` says which endpoint answered."""
    status_raw = to_str(pick(body, "invoiceStatus", "invoice_status", "status"))
    bundle = "orderBundle.0", "order_bundle.0"
    product_id = to_str(
        pick(
            body,
            "productId",
            "productCode",
            "product_code",
            *_in_order("itemCode", "item_code", "productId", "productCode"),
            *_in_order(*(f"{b}.{k}" for b in bundle for k in ("itemCode", "item_code"))),
        )
    )
    quantity = to_int(
        pick(
            body,
            "quantity",
            *_in_order("quantity"),
            *_in_order(*(f"{b}.quantity.value" for b in bundle)),
            *_in_order(*(f"{b}.quantity" for b in bundle)),
        )
    )
    return Payment(
        invoice_id=to_str(pick(body, "invoiceId", "invoice_id")) or "",
        status=InvoiceStatus.parse(status_raw),
        status_raw=status_raw,
        purchase_id=to_str(pick(body, "purchaseId", "purchase_id", *_in_order("purchaseId"))),
        order_id=to_str(pick(body, "orderId", *_in_order("orderId", "order_id"))),
        app_id=to_int(pick(body, "applicationCode", "appId", "application_code", "applicationId")),
        product_id=product_id,
        amount=to_kopecks(pick(body, "amount", *_in_order("amountCurrent", "amount", "amountCreate"))),
        currency=to_str(pick(body, "currency", *_in_order("currency"))),
        quantity=quantity,
        developer_payload=to_str(pick(body, "developerPayload", "developer_payload", *_in_order("developerPayload"))),
        app_user_id=to_str(pick(body, "appUserId", "app_user_id", "externalAccountId", *_in_order("appUserId"))),
        invoice_date=parse_time(pick(body, "invoiceDate", "invoice_date")),
        payment_date=parse_time(pick(body, "paymentInfo.paymentDate", "payment_info.payment_date", "paymentDate")),
        refund_date=parse_time(pick(body, "refundDate", "refund_date")),
        sandbox=sandbox,
        purchase_token=to_str(pick(body, "purchaseToken", "purchase_token", "subscriptionToken")),
        raw=body,
    )


@dataclass(frozen=True, slots=True)
class ListedPurchase:
    """One item of RuStore's purchase list by appUserId: the evidence it gives about an invoice."""

    invoice_id: str
    purchase_id: str | None
    product_id: str | None
    order_id: str | None


_LIST_KEYS = ("purchases", "content", "items", "elements", "list")


def parse_purchase_list(body: Any) -> list[ListedPurchase]:
    """Items of the purchase list, tolerating any envelope (API.md §13); unknown shapes give []."""
    items: Any = body
    if isinstance(body, dict):
        items = next((body[k] for k in _LIST_KEYS if isinstance(body.get(k), list)), [])
    if not isinstance(items, list):
        return []
    listed = []
    for item in items:
        if not isinstance(item, dict):
            continue
        invoice_id = to_str(pick(item, "invoiceId", "invoice_id"))
        if not invoice_id:
            continue
        listed.append(ListedPurchase(
            invoice_id=invoice_id, purchase_id=to_str(pick(item, "purchaseId", "purchase_id")),
            product_id=to_str(pick(item, "productId", "productCode", "product_code", "itemCode")),
            order_id=to_str(pick(item, "orderId", "order_id")),
        ))
    return listed


def derive_subscription_status(body: dict[str, Any], now: datetime) -> SubscriptionStatus:
    """Normalised status from whatever fields the body has.

    1. An explicit state (`status`, `subscriptionStatus`, or v1 `state`) wins when recognised, refined
       by auto-renew (`autoRenewing`/`recurrent` false while active -> CANCELLED) and by the v1
       `currentPeriod` (GRACE -> GRACE, HOLD -> PAUSED).
    2. Otherwise the Google-compatible V3/V4 fields decide (UNCONFIRMED for V4; API.md §3.5-3.6):
       expiry in the future: paymentState 0 -> GRACE, autoRenewing false -> CANCELLED, else ACTIVE;
       expiry passed: autoRenewing true with paymentState 0 -> PAUSED (hold), cancelReason 1 (system)
       -> TERMINATED, any other cancelReason or autoRenewing false -> CLOSED, else EXPIRED;
       no expiry: paymentState 0 -> PENDING, else UNKNOWN.
    """
    auto_renewing = to_bool(pick(body, "autoRenewing", "recurrent", "auto_renewing"))
    explicit = SubscriptionStatus.parse(pick(body, "status", "subscriptionStatus", "state"))
    if explicit is not SubscriptionStatus.UNKNOWN:
        period = str(pick(body, "currentPeriod", "period") or "").upper()
        if explicit is SubscriptionStatus.ACTIVE and period == "GRACE":
            return SubscriptionStatus.GRACE
        if explicit is SubscriptionStatus.ACTIVE and period == "HOLD":
            return SubscriptionStatus.PAUSED
        if explicit is SubscriptionStatus.ACTIVE and auto_renewing is False:
            return SubscriptionStatus.CANCELLED
        return explicit
    expiry = parse_time(pick(body, "expiryTimeMillis", "expiryTime", "expirationDate"))
    payment_state = to_int(pick(body, "paymentState"))
    cancel_reason = to_int(pick(body, "cancelReason"))
    if expiry is None:
        return SubscriptionStatus.PENDING if payment_state == 0 else SubscriptionStatus.UNKNOWN
    if expiry > now:
        if payment_state == 0:
            return SubscriptionStatus.GRACE
        return SubscriptionStatus.CANCELLED if auto_renewing is False else SubscriptionStatus.ACTIVE
    if auto_renewing and payment_state == 0:
        return SubscriptionStatus.PAUSED
    if cancel_reason == 1:
        return SubscriptionStatus.TERMINATED
    if cancel_reason is not None or auto_renewing is False:
        return SubscriptionStatus.CLOSED
    return SubscriptionStatus.EXPIRED


def parse_subscription(
    body: dict[str, Any],
    *,
    now: datetime,
    sandbox: bool,
    product_id: str | None = None,
    purchase_id: str | None = None,
    subscription_token: str | None = None,
) -> Subscription:
    """Subscription from a V4/V3 body or a v1 (S1) inner body; ids missing from the body come from the call."""
    price = micros_to_kopecks(pick(body, "priceAmountMicros"))
    if price is None:
        price = to_kopecks(pick(body, "price", "periodPrice"))
    purchase_type = to_int(pick(body, "purchaseType"))
    return Subscription(
        product_id=to_str(pick(body, "productId", "productCode", "subscriptionId")) or product_id,
        purchase_id=to_str(pick(body, "purchaseId")) or purchase_id,
        status=derive_subscription_status(body, now),
        start_time=parse_time(pick(body, "startTimeMillis", "startTime")),
        expiry_time=parse_time(pick(body, "expiryTimeMillis", "expiryTime", "expirationDate", "nextPaymentDate")),
        auto_renewing=to_bool(pick(body, "autoRenewing", "recurrent")),
        payment_state=to_int(pick(body, "paymentState")),
        cancel_reason=to_int(pick(body, "cancelReason")),
        acknowledged=to_int(pick(body, "acknowledgementState")) == 1,
        developer_payload=to_str(pick(body, "developerPayload")),
        app_user_id=to_str(pick(body, "externalAccountId", "appUserId", "obfuscatedExternalAccountId")),
        order_id=to_str(pick(body, "orderId")),
        price=price,
        currency=to_str(pick(body, "priceCurrencyCode", "currency")),
        # V3 marks test purchases with purchaseType 1 even when asked on the real path.
        sandbox=sandbox or purchase_type == 1,
        subscription_token=subscription_token,
        raw=body,
    )


def parse_catalog_item(element: dict[str, Any]) -> CatalogItem:
    """Catalog element; fields after `productType`/`name` are UNCONFIRMED, so all are optional."""
    price = to_kopecks(pick(element, "price", "priceAmount", "amount", "prices.0.price"))
    if price is None:
        price = micros_to_kopecks(pick(element, "priceAmountMicros"))
    return CatalogItem(
        product_id=to_str(pick(element, "productId", "productCode", "code")) or "",
        type=ProductType.parse(pick(element, "productType", "type")),
        title=to_str(pick(element, "name", "title", "productName")),
        description=to_str(pick(element, "description")),
        price=price,
        currency=to_str(pick(element, "currency", "priceCurrencyCode", "prices.0.currency")),
        status=(to_str(pick(element, "status", "productStatus")) or "").lower() or None,
        raw=element,
    )
