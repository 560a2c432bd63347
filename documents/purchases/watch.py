"""Unowned purchases the jobs gave up on, and the refund sweep's index: what operators watch on purchases.

An unowned purchase (RuStore answered but no evidence names an account) is re-asked at most
UNOWNED_PURCHASE_MAX_CHECKS times by `purchase-reconcile`, then left alone with `unowned_stopped_at`
set (`python server.py unowned` lists them); its buyer verifying it, or a notification, still applies it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from loguru import logger
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument

from core.metrics import UNOWNED_PURCHASES_STOPPED
from documents.purchases.store import COLLECTION

INDEXES = {
    # The refund sweep's slow pass: credited purchases, least recently checked first.
    COLLECTION: [IndexModel([("state", ASCENDING), ("refund_checked_at", ASCENDING), ("created_at", ASCENDING)],
                            name="refund_slow_pass"),
                 IndexModel([("unowned_stopped_at", DESCENDING)], sparse=True, name="unowned_stopped")],
}


async def note_unowned_check(db: Any, doc: dict, now: datetime, max_checks: int) -> bool:
    """Count one answered check of a purchase no account is bound to; True when the checks stop here."""
    counted = await db[COLLECTION].find_one_and_update(
        {"_id": doc["_id"], "user_id": None}, {"$inc": {"unowned_checks": 1}},
        projection={"unowned_checks": 1}, return_document=ReturnDocument.AFTER)
    if counted is None or counted["unowned_checks"] < max_checks:
        return False
    stopped = await db[COLLECTION].update_one(
        {"_id": doc["_id"], "user_id": None, "unowned_stopped_at": None},
        {"$set": {"next_check_at": None, "unowned_stopped_at": now, "last_error": "unowned: checks stopped"}})
    if stopped.modified_count:
        UNOWNED_PURCHASES_STOPPED.inc()
        logger.warning("unowned purchase: RuStore checks stopped", invoice_id=doc["invoice_id"],
                       checks=counted["unowned_checks"])
    return True


async def list_unowned_stopped(db: Any, limit: int) -> list[dict]:
    """Unowned purchases whose checks stopped, most recent first."""
    cursor = db[COLLECTION].find({"user_id": None, "unowned_stopped_at": {"$ne": None}}, {"history": 0})
    return await cursor.sort("unowned_stopped_at", DESCENDING).limit(limit).to_list(limit)
