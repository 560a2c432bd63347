"""Outbound events to the app team's own services: one document per event, with its deliveries.

Invariants: an event is recorded once per key (derived from what caused it), so every path that
records it again changes nothing; delivery state lives on the event.
"""

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
