"""The points wallet: an exactly-once ledger of credits, debits and clawbacks, its outbox, audit and entry events.

Invariants: a wallet changes only through `credit`/`debit`/`clawback`, each one atomic update keyed by
an idempotency key (a replay changes nothing and answers the first result); every change becomes a
`transactions` entry (and its events) through the outbox, even after a crash; the audit recomputes
every balance from the entries. The wallet imports nothing of purchases, subscriptions or billing:
they call it with their own keys.
"""

from __future__ import annotations

from documents.common import merge_indexes
from documents.wallet.audit import verify_ledger
from documents.wallet.entries import CLAWBACK, ENTRY_TYPES, TRANSACTIONS, USERS, LedgerEntry, new_wallet
from documents.wallet.entries import INDEXES as _entries_indexes
from documents.wallet.ledger import (
    MAX_AMOUNT,
    IdempotencyKeyMismatch,
    InsufficientPoints,
    LedgerError,
    LedgerResult,
    UserNotFound,
    clawback,
    credit,
    debit,
    find_entry,
    get_balance,
    list_entries,
)
from documents.wallet.notices import started_key
from documents.wallet.outbox import flush_user, repair_users

INDEXES = merge_indexes(_entries_indexes)

__all__ = [
    "INDEXES",
    "CLAWBACK",
    "ENTRY_TYPES",
    "IdempotencyKeyMismatch",
    "InsufficientPoints",
    "LedgerEntry",
    "LedgerError",
    "LedgerResult",
    "MAX_AMOUNT",
    "TRANSACTIONS",
    "USERS",
    "UserNotFound",
    "clawback",
    "credit",
    "debit",
    "find_entry",
    "flush_user",
    "get_balance",
    "list_entries",
    "new_wallet",
    "repair_users",
    "started_key",
    "verify_ledger",
]
