"""Tolerant parsing of documented, legacy and partial RuStore shapes (API.md examples)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rustore import InvoiceStatus, ProductType, SubscriptionStatus
from rustore.parsing import derive_subscription_status, parse_catalog_item, parse_payment, parse_subscription
from rustore.values import micros_to_kopecks, parse_time, to_kopecks

NOW = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("text, expected", [
    ("2023-07-18T14:31:33+03", datetime(2023, 7, 18, 11, 31, 33, tzinfo=UTC)),
    ("2020-04-29T08:18:03+03:00", datetime(2020, 4, 29, 5, 18, 3, tzinfo=UTC)),
    ("2023-08-02T10:11:04.655684723+03:00", datetime(2023, 8, 2, 7, 11, 4, 655684, tzinfo=UTC)),
    ("2022-07-08T13:24:41.8328711+03:00", datetime(2022, 7, 8, 10, 24, 41, 832871, tzinfo=UTC)),
    ("2024-11-01T11:10:54.994306Z", datetime(2024, 11, 1, 11, 10, 54, 994306, tzinfo=UTC)),
    ("2024-10-24T14:31:33+0300", datetime(2024, 10, 24, 11, 31, 33, tzinfo=UTC)),
    ("1694431707000", datetime(2023, 9, 11, 11, 28, 27, tzinfo=UTC)),
    (1694431707000, datetime(2023, 9, 11, 11, 28, 27, tzinfo=UTC)),
    ("2021-03-23", datetime(2021, 3, 22, 21, 0, tzinfo=UTC)),
    ("2024-10-24T14:31:33", datetime(2024, 10, 24, 11, 31, 33, tzinfo=UTC)),
])
def test_every_documented_time_format_becomes_aware_utc(text: object, expected: datetime) -> None:
    parsed = parse_time(text)
    assert parsed == expected and parsed.tzinfo is UTC  # type: ignore[union-attr]


@pytest.mark.parametrize("junk", [None, "", "yesterday", True, {"a": 1}])
def test_unreadable_times_are_none(junk: object) -> None:
    assert parse_time(junk) is None


def test_money_conversions() -> None:
    assert micros_to_kopecks("749000000") == 74900
    assert micros_to_kopecks("100000000") == 10000
    assert micros_to_kopecks(5000) == 1 and micros_to_kopecks("x") is None
    assert to_kopecks("9999") == 9999 and to_kopecks(100) == 100 and to_kopecks("1.5") is None


@pytest.mark.parametrize("raw, status", [
    ("confirmed", InvoiceStatus.CONFIRMED), ("CONFIRMED", InvoiceStatus.CONFIRMED), ("Paid", InvoiceStatus.PAID),
    ("canceled", InvoiceStatus.CANCELLED), ("REFUNDING", InvoiceStatus.UNKNOWN), (None, InvoiceStatus.UNKNOWN),
])
def test_invoice_statuses_are_case_insensitive_and_never_crash(raw: object, status: InvoiceStatus) -> None:
    assert InvoiceStatus.parse(raw) is status


def test_documented_p1_legacy_body_parses() -> None:
    body = {"invoice_id": "2850", "invoice_date": "2023-07-18T14:31:33+03", "invoice_status": "confirmed",
            "application_code": "3399750", "owner_code": "4384191",
            "invoice": {"order": {"order_id": "a090a93c-1", "amount": 100, "currency": "RUB",
                                  "order_bundle": [{"item_code": "1day", "item_price": 100,
                                                    "quantity": {"value": 1, "measure": "шт"}}]}},
            "payment_info": {"payment_date": "2023-07-18T14:32:00+03"}}
    payment = parse_payment(body, sandbox=False)
    assert (payment.invoice_id, payment.status, payment.product_id, payment.amount) == (
        "2850", InvoiceStatus.CONFIRMED, "1day", 100)
    assert (payment.app_id, payment.order_id, payment.quantity, payment.currency) == (3399750, "a090a93c-1", 1, "RUB")
    assert payment.payment_date == datetime(2023, 7, 18, 11, 32, tzinfo=UTC)


def test_minimal_documented_p3_body_parses_with_missing_fields_as_none() -> None:
    payment = parse_payment({"invoiceId": 12345, "invoiceDate": "2020-04-29T08:18:03+03:00",
                             "invoiceStatus": "CREATED", "appId": 3399750, "ownerCode": 4384191}, sandbox=True)
    assert payment.invoice_id == "12345" and payment.status is InvoiceStatus.CREATED and payment.sandbox
    assert payment.purchase_id is None and payment.amount is None and payment.payment_date is None


def test_documented_v3_example_parses() -> None:
    body = {"startTimeMillis": "1694431707000", "expiryTimeMillis": "1697034507000", "autoRenewing": True,
            "priceCurrencyCode": "RUB", "priceAmountMicros": "749000000", "countryCode": "RU", "paymentState": 1,
            "orderId": "33252..1", "acknowledgementState": 1, "kind": "androidpublisher#subscriptionPurchase",
            "purchaseType": 0}
    sub = parse_subscription(body, now=datetime(2023, 9, 20, tzinfo=UTC), sandbox=False, product_id="monthly")
    assert (sub.status, sub.price, sub.acknowledged, sub.order_id) == (SubscriptionStatus.ACTIVE, 74900, True, "33252..1")
    assert sub.product_id == "monthly" and sub.expiry_time == datetime(2023, 10, 11, 14, 28, 27, tzinfo=UTC)
    assert parse_subscription({**body, "purchaseType": 1}, now=NOW, sandbox=False).sandbox is True


def test_v1_subscription_body_parses() -> None:
    inner = {"productCode": "monthly_sub", "recurrent": True, "nextPaymentDate": "2021-03-23", "price": 9999,
             "currency": "RUB", "state": "ACTIVATED", "currentPeriod": "GRACE"}
    sub = parse_subscription(inner, now=NOW, sandbox=False, subscription_token="111.123")
    assert (sub.status, sub.price, sub.product_id, sub.subscription_token) == (
        SubscriptionStatus.GRACE, 9999, "monthly_sub", "111.123")


FUTURE, PAST = str(int((NOW + timedelta(days=3)).timestamp() * 1000)), str(int((NOW - timedelta(days=3)).timestamp() * 1000))


@pytest.mark.parametrize("body, status", [
    ({"expiryTimeMillis": FUTURE, "autoRenewing": True, "paymentState": 1}, SubscriptionStatus.ACTIVE),
    ({"expiryTimeMillis": FUTURE, "autoRenewing": True, "paymentState": 2}, SubscriptionStatus.ACTIVE),
    ({"expiryTimeMillis": FUTURE, "autoRenewing": True, "paymentState": 0}, SubscriptionStatus.GRACE),
    ({"expiryTimeMillis": FUTURE, "autoRenewing": False, "cancelReason": 0}, SubscriptionStatus.CANCELLED),
    ({"expiryTimeMillis": PAST, "autoRenewing": True, "paymentState": 0}, SubscriptionStatus.PAUSED),
    ({"expiryTimeMillis": PAST, "autoRenewing": False, "cancelReason": 1}, SubscriptionStatus.TERMINATED),
    ({"expiryTimeMillis": PAST, "autoRenewing": False, "cancelReason": 3}, SubscriptionStatus.CLOSED),
    ({"expiryTimeMillis": PAST, "autoRenewing": True, "paymentState": 1}, SubscriptionStatus.EXPIRED),
    ({"paymentState": 0}, SubscriptionStatus.PENDING),
    ({}, SubscriptionStatus.UNKNOWN),
    ({"status": "PAUSED", "expiryTimeMillis": FUTURE}, SubscriptionStatus.PAUSED),
    ({"status": "active", "autoRenewing": False}, SubscriptionStatus.CANCELLED),
    ({"state": "DECLINED"}, SubscriptionStatus.TERMINATED),
    ({"state": "ACTIVATED", "currentPeriod": "HOLD"}, SubscriptionStatus.PAUSED),
    ({"state": "SOMETHING_NEW", "expiryTimeMillis": FUTURE, "autoRenewing": True}, SubscriptionStatus.ACTIVE),
])
def test_subscription_status_derivation(body: dict[str, object], status: SubscriptionStatus) -> None:
    assert derive_subscription_status(body, NOW) is status


def test_catalog_elements_parse_documented_and_extra_fields() -> None:
    item = parse_catalog_item({"productId": "green_crystal_0_1", "productType": "non-consumable", "name": "Crystal",
                               "price": 1500, "currency": "RUB", "status": "ACTIVE"})
    assert (item.product_id, item.type, item.title, item.price, item.status) == (
        "green_crystal_0_1", ProductType.NON_CONSUMABLE, "Crystal", 1500, "active")
    bare = parse_catalog_item({"productId": "full_access", "productType": "subscription", "image": "x"})
    assert bare.type is ProductType.SUBSCRIPTION and bare.price is None and bare.title is None
