"""MongoDB collections and the rules on them, one package per aggregate; no HTTP here.

`ensure_indexes` creates every index each package declares (`INDEXES` in its `__init__`).
"""

from __future__ import annotations

from typing import Any

from documents import accounts, billing, common, events, generations, purchases, subscriptions, wallet, webhooks
from documents.common import merge_indexes

# Events are only written when EVENTS_WEBHOOK_URLS is set; their indexes are created anyway.
PACKAGES = (common, accounts, wallet, events, generations, billing, purchases, subscriptions, webhooks)


def all_indexes() -> dict[str, list]:
    """Every collection's IndexModels, gathered from the packages' INDEXES."""
    return merge_indexes(*(package.INDEXES for package in PACKAGES))


async def ensure_indexes(db: Any) -> None:
    """Create all indexes (idempotent); run at start-up before serving."""
    for collection, models in all_indexes().items():
        await db[collection].create_indexes(models)
