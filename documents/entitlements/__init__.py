"""entitlements."""

from __future__ import annotations

from documents.entitlements.snapshot import customer_snapshot, request_date, snapshot_etag
from documents.entitlements.sweep import sweep

__all__ = [
    "customer_snapshot",
    "request_date",
    "snapshot_etag",
    "sweep",
]
