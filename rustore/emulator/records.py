"""In-memory records of invoices and subscriptions held by the emulator."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rustore.emulator.config import EmulatorProduct


def iso(moment: datetime | None) -> str | None:
    """Millisecond ISO-8601 in UTC with `Z`, the newest format RuStore uses."""
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def millis(moment: datetime | None) -> str | None:
    """Epoch milliseconds as a string, like V3/V4 `*TimeMillis` fields."""
    return None if moment is None else str(int(moment.timestamp() * 1000))


@dataclass
class Invoice:
    """One invoice: a one-time purchase, or one charge of a subscription."""

    invoice_id: int
    app_id: int
    product: EmulatorProduct
    purchase_id: str
    order_id: str
    purchase_type: str
    quantity: int
    amount: int
    user_id: int
    sandbox: bool
    sdk: str
    invoice_date: datetime
    developer_payload: str | None = None
    app_user_id: str | None = None
    app_user_email: str | None = None
    status: str = "CREATED"
    payment_date: datetime | None = None
    paid_at: datetime | None = None
    refund_date: datetime | None = None
    subscription_id: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def purchase_token(self) -> str:
        """BillingClient `subscriptionToken`/`purchaseToken`: `invoiceId.userId`."""
        return f"{self.invoice_id}.{self.user_id}"

    def hold_deadline(self, hold_timeout: timedelta) -> datetime | None:
        """When an unconfirmed PAID hold is released automatically."""
        if self.status != "PAID" or self.paid_at is None:
            return None
        return self.paid_at + hold_timeout

    def view(self) -> dict[str, Any]:
        """Control-API JSON of the invoice."""
        return {
            "invoiceId": self.invoice_id,
            "appId": self.app_id,
            "purchaseId": self.purchase_id,
            "orderId": self.order_id,
            "productId": self.product.product_id,
            "productType": self.product.product_type,
            "purchaseType": self.purchase_type,
            "quantity": self.quantity,
            "amount": self.amount,
            "currency": self.product.currency,
            "status": self.status,
            "sandbox": self.sandbox,
            "sdk": self.sdk,
            "developerPayload": self.developer_payload,
            "appUserId": self.app_user_id,
            "purchaseToken": self.purchase_token,
            "invoiceDate": iso(self.invoice_date),
            "paymentDate": iso(self.payment_date),
            "refundDate": iso(self.refund_date),
            "subscriptionPurchaseId": self.subscription_id,
            "history": self.history,
        }


@dataclass
class SubscriptionRecord:
    """A subscription with RuStore's Pay SDK states (ACTIVE/PAUSED/CLOSED/TERMINATED) plus PENDING/EXPIRED.

    `period_name` follows the notification vocabulary (TRIAL/MAIN/GRACE/HOLD); `expiry_time` is
    the end of access as V3/V4 report it (grace extends it; hold sets it to when access was lost).
    """

    purchase_id: str
    app_id: int
    product: EmulatorProduct
    user_id: int
    sandbox: bool
    sdk: str
    order_id: str
    period: timedelta
    start_time: datetime
    developer_payload: str | None = None
    app_user_id: str | None = None
    status: str = "PENDING"
    period_name: str = "MAIN"
    expiry_time: datetime | None = None
    auto_renewing: bool = True
    acknowledged: bool = False
    cancel_reason: int | None = None
    cancel_time: datetime | None = None
    payment_state: int | None = 0
    renewal_outcome: str = "success"
    charges: int = 0
    retry_at: datetime | None = None
    grace_from: datetime | None = None
    grace_until: datetime | None = None
    hold_until: datetime | None = None
    invoice_ids: list[int] = field(default_factory=list)

    @property
    def token(self) -> str:
        """Legacy `subscriptionToken` (`firstInvoiceId.userId`)."""
        return f"{self.invoice_ids[0]}.{self.user_id}" if self.invoice_ids else ""

    @property
    def order_label(self) -> str:
        """V3-style `orderId`: first invoice id, then `..n` for the n-th renewal (zero-based)."""
        first = str(self.invoice_ids[0]) if self.invoice_ids else ""
        return first if self.charges <= 1 else f"{first}..{self.charges - 1}"

    def view(self) -> dict[str, Any]:
        """Control-API JSON of the subscription."""
        return {
            "purchaseId": self.purchase_id,
            "appId": self.app_id,
            "productId": self.product.product_id,
            "status": self.status,
            "period": self.period_name,
            "sandbox": self.sandbox,
            "sdk": self.sdk,
            "startTime": iso(self.start_time),
            "expiryTime": iso(self.expiry_time),
            "autoRenewing": self.auto_renewing,
            "acknowledged": self.acknowledged,
            "cancelReason": self.cancel_reason,
            "paymentState": self.payment_state,
            "renewalOutcome": self.renewal_outcome,
            "charges": self.charges,
            "invoiceIds": list(self.invoice_ids),
            "subscriptionToken": self.token,
            "orderId": self.order_id,
            "developerPayload": self.developer_payload,
            "appUserId": self.app_user_id,
        }
