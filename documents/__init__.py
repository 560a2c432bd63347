"""MongoDB collections and the rules on them; no HTTP here. `ensure_indexes` creates every index."""

from __future__ import annotations

from typing import Any

from documents.accounts import identities as identities
from documents.accounts import mail as mail_outbox_doc
from documents.accounts import sessions as sessions
from documents.accounts import tokens as account_tokens_doc
from documents.accounts import users as users
from documents.billing import orders as orders
from documents.common import leases as leases
from documents.events import store as outbound_events
from documents.generations import store as generations
from documents.purchases import payments as purchases
from documents.purchases import watch as refund_watch
from documents.subscriptions import store as subscriptions
from documents.wallet import ledger as ledger
from documents.webhooks import store as webhook_events

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
