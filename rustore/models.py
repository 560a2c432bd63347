"""Frozen value objects and normalised enums the client returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Self


class _Tolerant(StrEnum):
    """StrEnum that parses case-insensitively and maps anything new to UNKNOWN."""

    @classmethod
    def parse(cls, value: Any) -> Self:
        """Normalised member for a RuStore spelling; never raises."""
        if not isinstance(value, str) or not value.strip():
            return cls("UNKNOWN")
        key = value.strip().upper().replace("-", "_")
        key = _ALIASES.get(cls.__name__, {}).get(key, key)
        try:
            return cls(key)
        except ValueError:
            return cls("UNKNOWN")


class InvoiceStatus(_Tolerant):
    """Server-side invoice status (API.md §2.1); legacy lowercase and new uppercase both map here."""

    CREATED = "CREATED"
    EXECUTED = "EXECUTED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    PAID = "PAID"
    CONFIRMED = "CONFIRMED"
    REVERSED = "REVERSED"
    REFUNDED = "REFUNDED"
    UNKNOWN = "UNKNOWN"


class SubscriptionStatus(_Tolerant):
    """Normalised subscription state; see `rustore.parsing.derive_subscription_status`.

    CANCELLED means auto-renew is off but the paid period still runs (access kept);
    CLOSED means it ended after cancellation; TERMINATED means charge attempts were exhausted;
    EXPIRED means the first invoice was never paid (or it ended for a reason RuStore did not give);
    GRACE keeps access while a renewal charge is retried; PAUSED (alias HOLD) removes access.
    """

    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    GRACE = "GRACE"
    PAUSED = "PAUSED"
    HOLD = "PAUSED"
    CANCELLED = "CANCELLED"
    CLOSED = "CLOSED"
    TERMINATED = "TERMINATED"
    EXPIRED = "EXPIRED"
    UNKNOWN = "UNKNOWN"

    @property
    def entitled(self) -> bool:
        """True while the user should have access to the subscription's content."""
        return self in (SubscriptionStatus.ACTIVE, SubscriptionStatus.GRACE, SubscriptionStatus.CANCELLED)


class SubscriptionEventType(_Tolerant):
    """`subscription_event_type` of a SUBSCRIPTION_EVENT notification (API.md §5.6, UNCONFIRMED)."""

    ACTIVATED = "ACTIVATED"
    RENEWED = "RENEWED"
    CANCELLED = "CANCELLED"
    RESUMED = "RESUMED"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    CLOSED = "CLOSED"
    UNKNOWN = "UNKNOWN"


class ProductType(_Tolerant):
    """Product kind; catalog sends `consumable`/`non-consumable`/`subscription`, SDKs send UPPER_SNAKE."""

    CONSUMABLE = "CONSUMABLE"
    NON_CONSUMABLE = "NON_CONSUMABLE"
    SUBSCRIPTION = "SUBSCRIPTION"
    UNKNOWN = "UNKNOWN"


_ALIASES: dict[str, dict[str, str]] = {
    "InvoiceStatus": {"CANCELED": "CANCELLED", "INVOICE_CREATED": "CREATED"},
    "SubscriptionStatus": {
        # Pay SDK / notification spellings and legacy S1 `state` values (API.md §3.2, §8.2).
        "ACTIVATED": "ACTIVE",
        "REPEATING": "ACTIVE",
        "HOLD": "PAUSED",
        "DECLINED": "TERMINATED",
        "INVOICE_CREATED": "PENDING",
        "PROCESSING": "PENDING",
        "ACCEPTED": "PENDING",
        "DEPOSITED": "PENDING",
        "CREATED": "PENDING",
        "CANCELED": "EXPIRED",
        "REJECTED": "EXPIRED",
        "CLOSE_PENDING": "CANCELLED",
        "REFUNDED": "CLOSED",
    },
}


@dataclass(frozen=True, slots=True)
class Payment:
    """One invoice as RuStore reports it (P3 v2, P4 items, or legacy P1)."""

    invoice_id: str
    status: InvoiceStatus
    status_raw: str | None
    purchase_id: str | None
    order_id: str | None
    app_id: int | None
    product_id: str | None
    amount: int | None
    currency: str | None
    quantity: int | None
    developer_payload: str | None
    app_user_id: str | None
    invoice_date: datetime | None
    payment_date: datetime | None
    refund_date: datetime | None
    sandbox: bool
    purchase_token: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class PaymentsPage:
    """One page of P4 results."""

    items: tuple[Payment, ...]
    page_number: int
    page_size: int
    total_elements: int | None
    total_pages: int | None


@dataclass(frozen=True, slots=True)
class Subscription:
    """A subscription as RuStore reports it (V4 for Pay SDK, V3 or v1 for legacy tokens)."""

    product_id: str | None
    purchase_id: str | None
    status: SubscriptionStatus
    start_time: datetime | None
    expiry_time: datetime | None
    auto_renewing: bool | None
    payment_state: int | None
    cancel_reason: int | None
    acknowledged: bool
    developer_payload: str | None
    app_user_id: str | None
    order_id: str | None
    price: int | None
    currency: str | None
    sandbox: bool
    subscription_token: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def entitled(self) -> bool:
        """True while the user should have access (ACTIVE, GRACE, or CANCELLED within the paid period)."""
        return self.status.entitled


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """A product or subscription from the catalog endpoints (C1, C2)."""

    product_id: str
    type: ProductType
    title: str | None
    description: str | None
    price: int | None
    currency: str | None
    status: str | None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
