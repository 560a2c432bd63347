"""RuStore notifications: stored before RuStore gets its 200, then applied by re-asking RuStore.

Invariants: a notification id is stored once (redeliveries change nothing); a notification is never
applied itself, only the record RuStore answers for it (through `purchases.verify_invoice` or
`subscriptions.verify_subscription`); one processor at a time holds an event (claim + lease).
"""

from __future__ import annotations

from documents.common import merge_indexes
from documents.webhooks.processing import ProcessResult, WebhookProcessor
from documents.webhooks.store import (
    COLLECTION,
    FAILED,
    IGNORED,
    PROCESSED,
    RECEIVED,
    WebhookEventBusy,
    backlog_counts,
    find_event,
    list_dead_events,
    purge_expired,
    record_event,
    requeue_event,
)
from documents.webhooks.store import INDEXES as _store_indexes

INDEXES = merge_indexes(_store_indexes)

__all__ = [
    "INDEXES",
    "COLLECTION",
    "FAILED",
    "IGNORED",
    "PROCESSED",
    "ProcessResult",
    "RECEIVED",
    "WebhookEventBusy",
    "WebhookProcessor",
    "backlog_counts",
    "find_event",
    "list_dead_events",
    "purge_expired",
    "record_event",
    "requeue_event",
]
