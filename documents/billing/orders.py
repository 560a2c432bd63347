"""The `orders` collection: server-created orders that tie a RuStore purchase to the account that started it.

The app asks for an order before opening the Pay SDK purchase sheet and passes `orderId`,
`developerPayload` and `appUserId` to the SDK. RuStore echoes them back on the payment, so the
server knows whose purchase it is no matter who later presents the invoice.

Document shape::

    {_id: "<uuid4>", user_id: ObjectId, product_id, kind: "purchase" | "subscription",
     developer_payload, created_at, used_by_invoice: null | "<invoiceId>", used_by_purchase: null | "<purchaseId>"}
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, IndexModel

COLLECTION = "orders"
PAYLOAD_PREFIX = "rsb1:"
INDEXES = {
    COLLECTION: [
        IndexModel([("user_id", ASCENDING), ("created_at", ASCENDING)], name="user_orders"),
    ]
}


def developer_payload(order_id: str) -> str:
    """The developerPayload the app passes to the SDK for an order (recognisable, not secret)."""
    return PAYLOAD_PREFIX + order_id


def order_id_from_payload(payload: str | None) -> str | None:
    """The order id inside a developerPayload we issued, or None for anything else."""
    if payload and payload.startswith(PAYLOAD_PREFIX):
        return payload[len(PAYLOAD_PREFIX):] or None
    return None


async def create_order(db: Any, user_id: ObjectId, product_id: str, kind: str, now: datetime) -> dict:
    """Create an order for the user's next purchase of product_id."""
    order_id = str(uuid.uuid4())
    doc = {
        "_id": order_id,
        "user_id": user_id,
        "product_id": product_id,
        "kind": kind,
        "developer_payload": developer_payload(order_id),
        "created_at": now,
        "used_by_invoice": None,
        "used_by_purchase": None,
    }
    await db[COLLECTION].insert_one(doc)
    return doc


async def find_order(db: Any, order_id: str | None) -> dict | None:
    """The order with this id, or None."""
    if not order_id:
        return None
    return await db[COLLECTION].find_one({"_id": order_id})


async def find_order_for(db: Any, *, order_id: str | None, payload: str | None) -> dict | None:
    """The order a RuStore payment points at through its orderId or our developerPayload."""
    order = await find_order(db, order_id)
    if order is None:
        order = await find_order(db, order_id_from_payload(payload))
    return order


async def mark_order_used(db: Any, order_id: str, *, invoice_id: str | None = None,
                          purchase_id: str | None = None) -> None:
    """Record which invoice or subscription purchase used the order (for admins; first one wins)."""
    changes = {}
    if invoice_id:
        changes["used_by_invoice"] = invoice_id
    if purchase_id:
        changes["used_by_purchase"] = purchase_id
    for field, value in changes.items():
        await db[COLLECTION].update_one({"_id": order_id, field: None}, {"$set": {field: value}})
