"""MongoDB collections and the rules on them; no HTTP here. `ensure_indexes` creates every index."""

from __future__ import annotations

from typing import Any

from documents import account_tokens as account_tokens_doc
from documents import events as outbound_events
from documents import (
    generations,
    identities,
    leases,
    ledger,
    orders,
    purchases,
    refund_watch,
    sessions,
    subscriptions,
    users,
    webhook_events,
)
from documents import mail_outbox as mail_outbox_doc

INDEX_MODULES = [users, identities, sessions, ledger, leases, generations, orders, purchases, webhook_events, subscriptions,
                 refund_watch]
INDEX_MODULES.append(outbound_events)  # only written when EVENTS_WEBHOOK_URLS is set
INDEX_MODULES += [account_tokens_doc, mail_outbox_doc]


def all_indexes() -> dict[str, list]:
    """Every collection's IndexModels, gathered from the modules' INDEXES."""
    merged: dict[str, list] = {}
    for module in INDEX_MODULES:
        for collection, models in module.INDEXES.items():
            merged.setdefault(collection, []).extend(models)
    return merged


async def ensure_indexes(db: Any) -> None:
    """Create all indexes (idempotent); run at start-up before serving."""
    for collection, models in all_indexes().items():
        await db[collection].create_indexes(models)
