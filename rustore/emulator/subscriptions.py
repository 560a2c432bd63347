"""Subscription state machine: activation, renewals, grace, hold, termination, cancellation (API.md §3.1).

Grace keeps access and retries the charge every `charge_retry_interval`; paid in grace, the next
date stays on the original schedule. Hold removes access (status PAUSED); paid in hold, the new
period starts at the payment. Hold running out -> TERMINATED. Cancelled -> auto-renew off, CLOSED
at the end of the paid period (at once if it was in grace or hold). Sandbox subscriptions use
the fixed test period and close after 12 charges (§3.10).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from rustore.emulator.errors import bad_request
from rustore.emulator.purchases import check_order_id, create_invoice, drive
from rustore.emulator.records import Invoice, SubscriptionRecord, iso
from rustore.emulator.state import Store

RENEWAL_OUTCOMES = ("success", "fail")


def simulate_subscription(store: Store, app_id: int, params: dict[str, Any]) -> dict[str, Any]:
    """What the Pay SDK's purchase of a subscription does; returns its ProductPurchaseResult."""
    product = store.product(app_id, str(params.get("productId") or ""))
    if product.product_type != "subscription":
        raise bad_request("Product is not a subscription", 40007)
    if product.status != "active":
        raise bad_request("Product is inactive", 40006)
    sandbox = bool(params.get("sandbox", False))
    app_user_id = None if params.get("appUserId") in (None, "") else str(params["appUserId"])
    user_id = store.user_id(app_id, app_user_id)
    for other in store.subscriptions.values():
        if (other.app_id, other.product.product_id, other.user_id, other.sandbox) == (
                app_id, product.product_id, user_id, sandbox) and other.status in ("PENDING", "ACTIVE", "PAUSED"):
            raise bad_request("Subscription is already purchased", 40012)
    order_id = str(params.get("orderId") or uuid.uuid4())
    check_order_id(store, app_id, order_id)
    renewal = str(params.get("renewal") or "success")
    if renewal not in RENEWAL_OUTCOMES:
        raise bad_request("renewal must be success or fail", 40001)
    now = store.clock.now()
    record = SubscriptionRecord(
        purchase_id=str(uuid.uuid4()), app_id=app_id, product=product, user_id=user_id, sandbox=sandbox,
        sdk=str(params.get("sdk") or "pay"), order_id=order_id,
        period=store.timing.sandbox_period if sandbox else product.period, start_time=now,
        developer_payload=None if params.get("developerPayload") is None else str(params["developerPayload"]),
        app_user_id=app_user_id, renewal_outcome=renewal,
    )
    store.subscriptions[record.purchase_id] = record
    invoice = _new_invoice(store, record, amount=0 if product.trial else product.price, at=now)
    drive(store, invoice, str(params.get("outcome") or "success"), now)
    return {
        "purchaseId": record.purchase_id, "invoiceId": str(invoice.invoice_id), "orderId": order_id,
        "productId": product.product_id, "productType": "SUBSCRIPTION", "purchaseType": "ONE_STEP",
        "quantity": 1, "sandbox": sandbox, "invoiceStatus": invoice.status, "subscriptionToken": record.token,
        "status": record.status,
    }


def _new_invoice(store: Store, record: SubscriptionRecord, amount: int, at: datetime) -> Invoice:
    invoice = create_invoice(
        store, record.app_id, record.product, sandbox=record.sandbox, sdk=record.sdk, user_id=record.user_id,
        purchase_id=record.purchase_id, order_id=record.order_id if not record.invoice_ids else str(uuid.uuid4()),
        amount=amount, developer_payload=record.developer_payload, app_user_id=record.app_user_id,
        subscription_id=record.purchase_id, at=at,
    )
    record.invoice_ids.append(invoice.invoice_id)
    return invoice


def on_invoice(store: Store, invoice: Invoice, at: datetime) -> None:
    """Activate a PENDING subscription when its first invoice is paid, or expire it when that fails."""
    record = store.subscriptions.get(invoice.subscription_id or "")
    if record is None or record.status != "PENDING":
        return
    if invoice.status == "CONFIRMED":
        trial = record.product.trial
        record.status, record.period_name = "ACTIVE", "TRIAL" if trial else "MAIN"
        record.start_time, record.expiry_time = at, at + (trial or record.period)
        record.payment_state, record.charges = (2 if trial else 1), 1
        _event(store, record, "ACTIVATED", at, None, None)
    elif invoice.status in ("CANCELLED", "REJECTED", "EXPIRED"):
        record.status = "EXPIRED"


def next_due(record: SubscriptionRecord) -> datetime | None:
    """When this subscription next changes by itself."""
    if record.status == "ACTIVE" and record.period_name in ("MAIN", "TRIAL"):
        return record.expiry_time
    if record.status == "ACTIVE" and record.period_name == "GRACE":
        return min(d for d in (record.retry_at, record.grace_until) if d)
    if record.status == "PAUSED":
        return min(d for d in (record.retry_at, record.hold_until) if d)
    return None


def fire(store: Store, record: SubscriptionRecord, at: datetime) -> None:
    """Run the transition that is due at `at`."""
    if record.period_name in ("MAIN", "TRIAL"):
        if not record.auto_renewing:
            _close(store, record, at)
        elif record.sandbox and record.charges >= store.timing.sandbox_max_charges:
            record.auto_renewing = False
            _close(store, record, at)
        else:
            charge(store, record, at)
    elif record.retry_at is not None and record.retry_at <= at:
        charge(store, record, at)
    elif record.period_name == "GRACE":
        _after_grace(store, record, at)
    else:
        _terminate(store, record, at)


def charge(store: Store, record: SubscriptionRecord, at: datetime) -> None:
    """One renewal charge (a new invoice) and its consequences."""
    if record.status not in ("ACTIVE", "PAUSED"):
        raise bad_request("Subscription is not active")
    invoice = _new_invoice(store, record, record.product.price, at)
    paid = record.renewal_outcome == "success"
    drive(store, invoice, "success" if paid else "rejected", at)
    old_status, old_period = record.status, record.period_name
    if paid:
        record.charges += 1
        record.payment_state, record.retry_at = 1, None
        if old_status == "PAUSED":
            record.status, record.expiry_time = "ACTIVE", at + record.period
        else:
            base = record.grace_from if old_period == "GRACE" else record.expiry_time
            record.expiry_time = (base or at) + record.period
        record.period_name = "MAIN"
        record.grace_from = record.grace_until = record.hold_until = None
        _event(store, record, "RESUMED" if old_status == "PAUSED" else "RENEWED", at, old_status, old_period)
        return
    record.payment_state = 0
    record.retry_at = at + store.timing.charge_retry_interval
    if old_period in ("MAIN", "TRIAL"):
        grace = record.product.grace
        if grace:
            record.period_name, record.grace_from = "GRACE", record.expiry_time
            record.grace_until = record.expiry_time = (record.expiry_time or at) + grace
            _event(store, record, "PAYMENT_FAILED", at, old_status, old_period)
        else:
            _after_grace(store, record, at)


def _after_grace(store: Store, record: SubscriptionRecord, at: datetime) -> None:
    old_status, old_period = record.status, record.period_name
    hold = record.product.hold
    if not hold:
        _terminate(store, record, at)
        return
    record.status, record.period_name = "PAUSED", "HOLD"
    # Access ends now; V3/V4 then show a past expiry with paymentState 0 (Google's "on hold").
    record.expiry_time, record.hold_until = at, at + hold
    record.retry_at = at + store.timing.charge_retry_interval
    _event(store, record, "PAYMENT_FAILED", at, old_status, old_period)


def _terminate(store: Store, record: SubscriptionRecord, at: datetime) -> None:
    old_status, old_period = record.status, record.period_name
    record.status, record.auto_renewing, record.cancel_reason = "TERMINATED", False, 1
    record.payment_state = record.retry_at = None
    record.expiry_time = min(record.expiry_time or at, at)
    _event(store, record, "CLOSED", at, old_status, old_period)


def _close(store: Store, record: SubscriptionRecord, at: datetime) -> None:
    old_status, old_period = record.status, record.period_name
    record.status, record.payment_state, record.retry_at = "CLOSED", None, None
    record.expiry_time = min(record.expiry_time or at, at)
    _event(store, record, "CLOSED", at, old_status, old_period)


def cancel(store: Store, record: SubscriptionRecord, by_developer: bool) -> None:
    """Turn auto-renew off (S8 or the user); it closes at the period end, at once in grace or hold."""
    if record.status not in ("ACTIVE", "PAUSED"):
        raise bad_request("Subscription is not active")
    at = store.clock.now()
    if record.auto_renewing:
        record.auto_renewing, record.cancel_time = False, at
        record.cancel_reason = 3 if by_developer else 0
        _event(store, record, "CANCELLED", at, record.status, record.period_name)
    if record.status == "PAUSED" or record.period_name == "GRACE":
        _close(store, record, at)


def set_renewal_outcome(record: SubscriptionRecord, outcome: str) -> None:
    """Choose whether future charges succeed (a good card) or fail (the 1-kopeck test card)."""
    if outcome not in RENEWAL_OUTCOMES:
        raise bad_request("outcome must be success or fail")
    record.renewal_outcome = outcome


def _event(store: Store, record: SubscriptionRecord, kind: str, at: datetime,
           old_status: str | None, old_period: str | None) -> None:
    data = {
        "product_code": record.product.product_id,
        "event_time": iso(at),
        "subscription_event_type": kind,
        "status_new": record.status,
        "status_old": old_status,
        "period_new": record.period_name,
        "period_old": old_period,
        "autorenewing": record.auto_renewing,
        "invoice_id": str(record.invoice_ids[-1]) if record.invoice_ids else None,
        "order_id": record.order_id,
        "purchase_id": record.purchase_id,
        "developer_payload": record.developer_payload,
    }
    store.emit(record.app_id, "SUBSCRIPTION_EVENT", data, record.sandbox)
