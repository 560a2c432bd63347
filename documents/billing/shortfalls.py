"""Refund clawbacks that found the points already spent: counted when they happen, listed for operators.

A shortfall is a ledger clawback entry with `meta.shortfall > 0` (the floor-at-zero policy took less
than was granted because the points were spent), for purchases and subscription periods alike;
`python server.py shortfalls` lists them with the account.
"""

from __future__ import annotations

from typing import Any

from loguru import logger
from pymongo import DESCENDING, IndexModel

from core.metrics import CLAWBACK_SHORTFALL, CLAWBACK_SHORTFALL_POINTS
from documents.wallet import CLAWBACK, TRANSACTIONS, USERS, LedgerResult

INDEXES = {
    # Only clawbacks that found points spent: a tiny index behind `python server.py shortfalls`.
    TRANSACTIONS: [IndexModel([("created_at", DESCENDING)], name="clawback_shortfalls",
                              partialFilterExpression={"type": CLAWBACK, "meta.shortfall": {"$gt": 0}})],
}


def note_shortfall(kind: str, result: LedgerResult, **context: Any) -> None:
    """Count a clawback that found its points spent (floor at zero); `python server.py shortfalls` lists them."""
    shortfall = int(result.entry.meta.get("shortfall") or 0)
    if shortfall and not result.replayed:
        CLAWBACK_SHORTFALL.labels(kind).inc()
        CLAWBACK_SHORTFALL_POINTS.labels(kind).inc(shortfall)
        logger.warning("refund clawback short: points were already spent", kind=kind, shortfall=shortfall, **context)


async def list_shortfalls(db: Any, limit: int) -> list[dict]:
    """Clawbacks that took less than requested (points already spent), newest first, with the account."""
    cursor = db[TRANSACTIONS].find({"type": CLAWBACK, "meta.shortfall": {"$gt": 0}})
    entries = await cursor.sort("created_at", DESCENDING).limit(limit).to_list(limit)
    ids = list({e["user_id"] for e in entries})
    users = {u["_id"]: u for u in await db[USERS].find({"_id": {"$in": ids}}, {"email": 1, "points.balance": 1,
                                                                               "identities": 1}).to_list(len(ids))}
    return [{"entry": e, "user": users.get(e["user_id"])} for e in entries]
