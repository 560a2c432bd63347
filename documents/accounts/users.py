"""The `users` collection: accounts with a unique normalised email, devices, wallet and subscription.

Document shape (as admins see it in Compass)::

    {_id: ObjectId, email: "ann@example.com", password_hash: "$2b$12$..." | null,
     device_ids: ["pixel-7-abc"], created_at, updated_at,
     points: {balance, seq, updated_at, recent: [...], outbox: [...]},   # see documents/wallet/ledger.py
     subscription: null | {...},                                         # see documents/subscriptions/store.py
     owned_products: [{product_id, invoice_id, acquired_at, sandbox}]}
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from documents import common
from documents.common import EmailTaken, NotFound
from documents.wallet import new_wallet

COLLECTION = "users"
MAX_DEVICES = 20
# The wallet's guard lists can reach tens of kB; reads outside the ledger never need them.
WITHOUT_LEDGER_STATE = {"points.recent": 0, "points.outbox": 0}
INDEXES = {
    COLLECTION: [
        IndexModel([("email", ASCENDING)], unique=True, name="email_unique"),
    ]
}


def normalize_email(email: str) -> str:
    """NFKC-fold, trim and lowercase an email so one mailbox maps to one account (documents/common/text.py)."""
    return common.normalize_email(email)


def parse_id(value: Any) -> ObjectId | None:
    """Turn a client-supplied id into an ObjectId, or None when it is not one."""
    if isinstance(value, ObjectId):
        return value
    if not isinstance(value, str):
        return None
    try:
        return ObjectId(value)
    except (InvalidId, TypeError):
        return None


async def create_user(
    db: Any, email: str, password_hash: str | None, device_id: str | None, now: datetime
) -> dict:
    """Insert a new account; two racing registrations of one email yield one account and EmailTaken."""
    doc = {
        "_id": ObjectId(),
        "email": normalize_email(email),
        "password_hash": password_hash,
        "device_ids": [device_id] if device_id else [],
        "created_at": now,
        "updated_at": now,
        "points": new_wallet(now),
        "subscription": None,
        "owned_products": [],
    }
    try:
        await db[COLLECTION].insert_one(doc)
    except DuplicateKeyError:
        raise EmailTaken("An account with this email already exists.") from None
    return doc


async def find_user_by_email(db: Any, email: str) -> dict | None:
    """Return the account for an email (normalised first), or None."""
    return await db[COLLECTION].find_one({"email": normalize_email(email)}, WITHOUT_LEDGER_STATE)


async def find_user(db: Any, user_id: Any) -> dict | None:
    """Return the account with this id, or None (also for ids that are not ObjectIds)."""
    oid = parse_id(user_id)
    if oid is None:
        return None
    return await db[COLLECTION].find_one({"_id": oid}, WITHOUT_LEDGER_STATE)


async def get_user(db: Any, user_id: Any) -> dict:
    """Return the account with this id or raise NotFound."""
    user = await find_user(db, user_id)
    if user is None:
        raise NotFound("User not found.", reason="user_not_found")
    return user


async def remember_device(db: Any, user_id: ObjectId, device_id: str | None, now: datetime) -> None:
    """Record a device the user signed in from (bounded list, most recent last)."""
    if not device_id:
        return
    await db[COLLECTION].update_one(
        {"_id": user_id, "device_ids": {"$ne": device_id}},
        {"$push": {"device_ids": {"$each": [device_id], "$slice": -MAX_DEVICES}}, "$set": {"updated_at": now}},
    )


async def update_account(
    db: Any, user_id: ObjectId, now: datetime, *, email: str | None = None, password_hash: str | None = None
) -> dict:
    """Change email and/or password hash atomically; EmailTaken if the new email is in use."""
    changes: dict[str, Any] = {"updated_at": now}
    if email is not None:
        changes["email"] = normalize_email(email)
    if password_hash is not None:
        changes["password_hash"] = password_hash
    try:
        user = await db[COLLECTION].find_one_and_update(
            {"_id": user_id}, {"$set": changes}, projection=WITHOUT_LEDGER_STATE, return_document=ReturnDocument.AFTER
        )
    except DuplicateKeyError:
        raise EmailTaken("An account with this email already exists.") from None
    if user is None:
        raise NotFound("User not found.", reason="user_not_found")
    return user
