"""Rules shared by one-time purchases and subscriptions: ownership, orders, record checks, credit origin, shortfalls.

Invariants: a RuStore purchase is bound to an account only by evidence RuStore returned
(`decide_owner`), first binding wins (`bind_owner`); every RuStore record passes `records` before it
changes anything (application, sandbox, one-time or subscription by the catalog); a server order is
used by one purchase. Billing knows nothing of how purchases or subscriptions are stored.
"""

from __future__ import annotations

from documents.billing.orders import INDEXES as _orders_indexes
from documents.billing.orders import create_order, mark_order_used
from documents.billing.origin import origin_of, period_view, purchase_credited_by, recorded_origin
from documents.billing.ownership import (
    Claim,
    Ownership,
    PurchaseMismatch,
    PurchaseNotFound,
    PurchasePolicy,
    bind_owner,
    decide_owner,
    store_claim,
    stored_claims,
)
from documents.billing.records import (
    check_notification,
    check_payment,
    check_refund,
    check_subscription,
    check_subscription_request,
    is_subscription,
)
from documents.billing.shortfalls import INDEXES as _shortfalls_indexes
from documents.billing.shortfalls import list_shortfalls, note_shortfall
from documents.common import merge_indexes

INDEXES = merge_indexes(_orders_indexes, _shortfalls_indexes)

__all__ = [
    "INDEXES",
    "Claim",
    "Ownership",
    "PurchaseMismatch",
    "PurchaseNotFound",
    "PurchasePolicy",
    "bind_owner",
    "check_notification",
    "check_payment",
    "check_refund",
    "check_subscription",
    "check_subscription_request",
    "create_order",
    "decide_owner",
    "is_subscription",
    "list_shortfalls",
    "mark_order_used",
    "note_shortfall",
    "origin_of",
    "period_view",
    "purchase_credited_by",
    "recorded_origin",
    "store_claim",
    "stored_claims",
]
