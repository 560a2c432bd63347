"""Response bodies in RuStore's shapes; fields marked ASSUMED are not in the stored docs (API.md §2.4, §3.6, §4.1)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rustore.emulator.config import EmulatorApp, EmulatorProduct
from rustore.emulator.records import Invoice, SubscriptionRecord, iso, millis
from rustore.values import MOSCOW

SHAPES = ("minimal", "rich")


def payment_record(invoice: Invoice, app: EmulatorApp, shape: str = "minimal") -> dict[str, Any]:
    """P3/P4 item in the chosen shape: RuStore's published minimum (default) or the richer legacy one."""
    return payment_v2(invoice, app) if shape == "rich" else payment_minimal(invoice, app)


def payment_minimal(invoice: Invoice, app: EmulatorApp) -> dict[str, Any]:
    """P3/P4 item exactly as RuStore's published `InvoicePaymentDto` (SPEC-2024, API.md §13): no
    purchaseId, no appUserId, no quantity; the product only as `order.itemCode`; the app as
    `applicationCode`; the status lowercase.
    """
    body: dict[str, Any] = {
        "invoiceId": invoice.invoice_id,
        "invoiceDate": iso(invoice.invoice_date),
        "refundDate": iso(invoice.refund_date),
        "invoiceStatus": invoice.status.lower(),
        "developerPayload": invoice.developer_payload,
        "applicationCode": invoice.app_id,
        "ownerCode": app.owner_code,
        "order": {
            "orderId": invoice.order_id,
            "orderNumber": str(invoice.invoice_id),
            "visualName": invoice.product.title,
            "amountCreate": invoice.amount,
            "amountCurrent": invoice.amount,
            "currency": invoice.product.currency,
            "itemCode": invoice.product.product_id,
            "description": invoice.product.description,
            "language": "ru",
        },
    }
    if invoice.status != "CREATED":
        body["paymentInfo"] = {
            "paymentDate": iso(invoice.payment_date), "maskedPan": "XX0000", "paymentSystem": "MIR",
            "paymentWay": "CARD", "paymentWayCode": "card", "bankName": "Emulated bank",
        }
    return body


def purchase_list_item(invoice: Invoice) -> dict[str, Any]:
    """One item of the purchase list by appUserId (API.md §13; envelope and paging UNCONFIRMED)."""
    return {
        "purchaseId": invoice.purchase_id,
        "productId": invoice.product.product_id,
        "invoiceId": str(invoice.invoice_id),
        "orderId": invoice.order_id,
        "purchaseType": invoice.purchase_type,
        "productType": invoice.product.product_type.upper().replace("-", "_"),
        "description": invoice.product.description,
        "purchaseState": invoice.status,
        "developerPayload": invoice.developer_payload,
    }


def payment_v2(invoice: Invoice, app: EmulatorApp) -> dict[str, Any]:
    """P3/P4 item, rich shape. DOC: invoiceId, invoiceDate, refundDate, invoiceStatus, developerPayload, appId,
    ownerCode, paymentInfo.paymentDate. CODE: paymentInfo.paymentWay/paymentSystem/maskedPan/bankName,
    order.itemCode/amountCurrent/currency/visualName. ASSUMED: purchaseId, order.orderId,
    order.quantity, order.appUserId, order.purchaseType.
    """
    body: dict[str, Any] = {
        "invoiceId": invoice.invoice_id,
        "invoiceDate": iso(invoice.invoice_date),
        "refundDate": iso(invoice.refund_date),
        "invoiceStatus": invoice.status,
        "developerPayload": invoice.developer_payload,
        "appId": invoice.app_id,
        "ownerCode": app.owner_code,
        "purchaseId": invoice.purchase_id,
        "order": {
            "orderId": invoice.order_id,
            "itemCode": invoice.product.product_id,
            "visualName": invoice.product.title,
            "amountCurrent": invoice.amount,
            "currency": invoice.product.currency,
            "quantity": invoice.quantity,
            "appUserId": invoice.app_user_id,
            "purchaseType": invoice.purchase_type,
        },
    }
    if invoice.status != "CREATED":  # DOC: paymentInfo is absent while CREATED
        body["paymentInfo"] = {
            "paymentDate": iso(invoice.payment_date),
            "paymentWay": "CARD",
            "paymentSystem": "MIR",
            "maskedPan": "XX0000",
            "bankName": "Emulated bank",
        }
    return body


def _moscow_short(moment: datetime | None) -> str | None:
    # P1 documents offsets without minutes, e.g. `2023-07-18T14:31:33+03`.
    return None if moment is None else moment.astimezone(MOSCOW).strftime("%Y-%m-%dT%H:%M:%S+03")


def payment_v1(invoice: Invoice, app: EmulatorApp) -> dict[str, Any]:
    """P1 legacy body: snake_case, lowercase status, amounts in kopecks (API.md §2.2)."""
    product = invoice.product
    return {
        "error": {"user_message": "", "error_description": "", "error_code": 0},
        "invoice_id": str(invoice.invoice_id),
        "invoice_date": _moscow_short(invoice.invoice_date),
        "invoice_status": invoice.status.lower(),
        "application_code": str(invoice.app_id),
        "application_name": app.name,
        "owner_code": str(app.owner_code),
        "owner_name": app.owner_name,
        "invoice": {
            "purchaser": {"email": invoice.app_user_email, "phone": None, "contact": None},
            "invoice_params": [],
            "order": {
                "order_id": invoice.order_id,
                "order_date": _moscow_short(invoice.invoice_date),
                "amount": invoice.amount,
                "currency": product.currency,
                "description": product.description,
                "visual_amount": f"{invoice.amount / 100:g} ₽",
                "order_bundle": [{
                    "position_id": 1,
                    "name": product.title,
                    "quantity": {"value": invoice.quantity, "measure": "шт"},
                    "item_amount": invoice.amount,
                    "currency": product.currency,
                    "item_code": product.product_id,
                    "item_price": product.price,
                }],
            },
        },
        "payment_info": None if invoice.payment_date is None else {
            "payment_date": _moscow_short(invoice.payment_date),
            "masked_pan": "XX0000",
            "payment_system": "MIR",
        },
    }


def subscription_v3(record: SubscriptionRecord, *, v4: bool) -> dict[str, Any]:
    """V3 (unwrapped) / V4 (wrapped by the caller) body. V4 extras beyond the DOC fields are
    CODE-level (externalAccountId, gracePeriodEnabled, userCancellationTimeMillis) or ASSUMED.
    """
    product = record.product
    body: dict[str, Any] = {
        "startTimeMillis": millis(record.start_time),
        "autoRenewing": record.auto_renewing,
        "priceCurrencyCode": product.currency,
        "priceAmountMicros": str(product.price * 10_000),
        "countryCode": "RU",
        "orderId": record.order_label,
        "acknowledgementState": 1 if record.acknowledged else 0,
        "kind": "androidpublisher#subscriptionPurchase",
        "purchaseType": 1 if record.sandbox else 0,
    }
    if record.status != "PENDING":
        body["expiryTimeMillis"] = millis(record.expiry_time)
    if record.payment_state is not None:
        body["paymentState"] = record.payment_state
    if record.cancel_reason is not None:
        body["cancelReason"] = record.cancel_reason
    if product.trial:
        body["introductoryPriceInfo"] = {
            "introductoryPriceCurrencyCode": product.currency,
            "introductoryPriceAmountMicros": "0",
            "introductoryPricePeriod": f"P{max(product.trial.days, 1)}D",
            "introductoryPriceCycles": "1",
        }
    if v4:
        body["developerPayload"] = record.developer_payload
        body["externalAccountId"] = record.app_user_id
        body["gracePeriodEnabled"] = product.grace is not None
        if record.cancel_time is not None and record.cancel_reason == 0:
            body["userCancellationTimeMillis"] = millis(record.cancel_time)
    return body


_V1_STATES = {"PENDING": "ACCEPTED", "ACTIVE": "ACTIVATED", "PAUSED": "ACTIVATED", "CLOSED": "CLOSED",
              "TERMINATED": "DECLINED", "EXPIRED": "CANCELED"}
_V1_PERIODS = {"TRIAL": "PROMO", "MAIN": "STANDARD", "GRACE": "GRACE", "HOLD": "HOLD"}


def subscription_v1(record: SubscriptionRecord) -> dict[str, Any]:
    """S1 inner body (the caller wraps it twice, API.md §3.2)."""
    product = record.product
    days = max(int(record.period.total_seconds() // 86400), 0)
    expiry = record.expiry_time
    return {
        "serviceName": "Emulated app",
        "subscriptionId": record.invoice_ids[0] if record.invoice_ids else 0,
        "productType": "SUBSCRIPTION",
        "productName": product.title,
        "productCode": product.product_id,
        "recurrent": record.auto_renewing,
        "countOfDay": days,
        "periodType": "DAY",
        "periodDuration": days,
        "nextPaymentDate": expiry.astimezone(MOSCOW).date().isoformat() if expiry else None,
        "price": product.price,
        "currency": product.currency,
        "state": _V1_STATES.get(record.status, record.status),
        "currentPeriod": _V1_PERIODS.get(record.period_name, record.period_name),
        "debtPaymentPeriod": None,
        "description": product.description,
        "periods": [{"periodName": "STANDARD", "periodType": "DAY", "periodDuration": days,
                     "periodPrice": product.price, "nextPeriod": None}],
    }


def catalog_element(product: EmulatorProduct) -> dict[str, Any]:
    """C1/C2 element. DOC: productId, productType, name (and image for C2). ASSUMED: the rest."""
    element: dict[str, Any] = {
        "productId": product.product_id,
        "productType": product.product_type,
        "name": product.title,
        "description": product.description,
        "status": product.status,
        "price": product.price,
        "currency": product.currency,
        "image": None,
    }
    if product.product_type == "subscription":
        element["subscriptionPeriod"] = f"P{max(product.period.days, 0)}DT{product.period.seconds}S"
    return element
