"""events."""

from __future__ import annotations

from documents.common import merge_indexes
from documents.events.store import (
    COLLECTION,
    Endpoint,
    disable,
    enable,
    endpoints,
    envelope,
    find_event,
    iso,
    list_deliveries,
    mark_delivered,
    mark_failed,
    oldest_undelivered,
    pending_heads,
    record,
    replay,
)
from documents.events.store import INDEXES as _store_indexes

INDEXES = merge_indexes(_store_indexes)

__all__ = [
    "INDEXES",
    "COLLECTION",
    "Endpoint",
    "disable",
    "enable",
    "endpoints",
    "envelope",
    "find_event",
    "iso",
    "list_deliveries",
    "mark_delivered",
    "mark_failed",
    "oldest_undelivered",
    "pending_heads",
    "record",
    "replay",
]
