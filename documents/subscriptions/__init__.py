"""Subscriptions: one document per RuStore subscription, grants per paid period, refunds per charge.

Entry points: `verify_subscription`, `verify_legacy_subscription`, `sync_subscription`,
`cancel_subscription`, `refresh_current`. Invariants: an older answer never overwrites a newer one
(`observed_at`); a paid period is granted once (ledger key per period end); a refunded charge takes
back its period's points once; ownership is `billing.decide_owner`.
"""

from __future__ import annotations

from documents.common import merge_indexes
from documents.subscriptions.refunds import apply_charge, find_charged, settle_due
from documents.subscriptions.store import (
    COLLECTION,
    ENTITLED,
    MAX_PER_USER,
    UNSETTLED,
    SubscriptionNotActive,
    SubscriptionNotFound,
    display_status,
    due_for_check,
    note_check_failure,
)
from documents.subscriptions.store import INDEXES as _store_indexes
from documents.subscriptions.sync import (
    cancel_subscription,
    refresh_current,
    sync_subscription,
    verify_legacy_subscription,
    verify_subscription,
)

INDEXES = merge_indexes(_store_indexes)

__all__ = [
    "INDEXES",
    "COLLECTION",
    "ENTITLED",
    "MAX_PER_USER",
    "SubscriptionNotActive",
    "SubscriptionNotFound",
    "UNSETTLED",
    "apply_charge",
    "cancel_subscription",
    "display_status",
    "due_for_check",
    "find_charged",
    "note_check_failure",
    "refresh_current",
    "settle_due",
    "sync_subscription",
    "verify_legacy_subscription",
    "verify_subscription",
]
