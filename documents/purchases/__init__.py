"""One-time purchases: one document per RuStore invoice, applied from RuStore's record only.

Entry points: `verify_invoice` (verify, webhooks, jobs and outage recovery all go through it) and
`settle_revocation`. Invariants: a state only moves forward; effects (credit, ownership, clawback)
run before the state is written and are idempotent by ledger keys derived from the invoice, so a
crash between any two steps is finished by the next check; ownership is `billing.decide_owner`.
Purchases call the wallet; the wallet never calls back.
"""

from __future__ import annotations

from documents.common import merge_indexes
from documents.purchases.effects import is_credited, settle_revocation
from documents.purchases.revocation import revoke_recorded
from documents.purchases.store import COLLECTION, GRANTED, REVOKED, find_purchase, list_user_purchases
from documents.purchases.store import INDEXES as _store_indexes
from documents.purchases.sync import note_check_failure, verify_invoice
from documents.purchases.watch import INDEXES as _watch_indexes
from documents.purchases.watch import list_unowned_stopped, note_unowned_check

INDEXES = merge_indexes(_store_indexes, _watch_indexes)

__all__ = [
    "INDEXES",
    "COLLECTION",
    "GRANTED",
    "REVOKED",
    "find_purchase",
    "is_credited",
    "list_unowned_stopped",
    "list_user_purchases",
    "note_check_failure",
    "note_unowned_check",
    "revoke_recorded",
    "settle_revocation",
    "verify_invoice",
]
