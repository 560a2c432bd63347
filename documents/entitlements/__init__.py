"""What a user is entitled to (the customer snapshot) and the events emitted when it changes.

Invariants: entitlement is computed at read time from RuStore-verified state, never stored as a
flag; the sweep announces each change once (cursor + stored last state).
"""

from __future__ import annotations

from documents.entitlements.snapshot import customer_snapshot, request_date, snapshot_etag
from documents.entitlements.sweep import sweep

__all__ = [
    "customer_snapshot",
    "request_date",
    "snapshot_etag",
    "sweep",
]
