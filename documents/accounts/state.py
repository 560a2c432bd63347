"""Account lifecycle on `users`: locale, e-mail verification, pending e-mail changes and erasure.

Fields added to a user document::

    locale: "en" | "ru", email_verified: bool, pending_email: str | null,
    deleted_at: date (erased accounts only; email is then "deleted:<_id>")

Rules: a changed e-mail is held in `pending_email` and replaces `email` only when a link sent to it is
used, so the account keeps a working address until the new one is proven. The `email_unique` index
decides a race for the address at that moment (EmailTaken). Erasure keeps the document itself as an
anonymous tombstone: purchases, subscriptions and ledger entries point at its `_id` and the wallet must
stay for the ledger audit, while every field that identifies a person is removed (docs/accounts.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from documents.accounts import users as users_doc
from documents.accounts.tokens import InvalidOrExpiredToken
from documents.common import EmailTaken

COLLECTION = users_doc.COLLECTION
DELETED_PREFIX = "deleted:"
LOCALES = ("en", "ru")


async def set_locale(db: Any, user_id: ObjectId, locale: str, now: datetime) -> None:
    """Store the language the account's e-mails are written in."""
    await db[COLLECTION].update_one({"_id": user_id}, {"$set": {"locale": locale, "updated_at": now}})


async def start_account(db: Any, user_id: ObjectId, locale: str, now: datetime) -> None:
    """A new password account: its e-mail language, and an address not yet verified (one write)."""
    await db[COLLECTION].update_one({"_id": user_id}, {"$set": {"locale": locale, "email_verified": False}})


async def set_email_verified(db: Any, user_id: ObjectId, verified: bool, now: datetime) -> None:
    """Record whether the current e-mail is proven (a provider's flag, or a used link)."""
    await db[COLLECTION].update_one({"_id": user_id}, {"$set": {"email_verified": verified, "updated_at": now}})


async def request_email_change(db: Any, user: dict, new_email: str, now: datetime) -> dict:
    """Hold `new_email` as pending (the current one stays); EmailTaken when another account uses it."""
    new_email = users_doc.normalize_email(new_email)
    holder = await users_doc.find_user_by_email(db, new_email)
    if holder is not None and holder["_id"] != user["_id"]:
        raise EmailTaken("An account with this email already exists.")
    return await db[COLLECTION].find_one_and_update(
        {"_id": user["_id"]}, {"$set": {"pending_email": new_email, "updated_at": now}},
        projection=users_doc.WITHOUT_LEDGER_STATE, return_document=ReturnDocument.AFTER,
    )


async def drop_pending_email(db: Any, user_id: ObjectId, now: datetime) -> None:
    """Forget a requested address change (its link then fails: the account has no such pending address)."""
    await db[COLLECTION].update_one({"_id": user_id}, {"$set": {"pending_email": None, "updated_at": now}})


async def confirm_email(db: Any, user_id: ObjectId, email: str, now: datetime) -> dict:
    """A verification link for `email` was used: mark the current address verified, or switch to the pending one."""
    users = db[COLLECTION]
    verified = await users.find_one_and_update(
        {"_id": user_id, "email": email, "deleted_at": None}, {"$set": {"email_verified": True, "updated_at": now}},
        projection=users_doc.WITHOUT_LEDGER_STATE, return_document=ReturnDocument.AFTER)
    if verified is not None:
        return verified
    try:
        switched = await users.find_one_and_update(
            {"_id": user_id, "pending_email": email, "deleted_at": None},
            {"$set": {"email": email, "email_verified": True, "pending_email": None, "updated_at": now}},
            projection=users_doc.WITHOUT_LEDGER_STATE, return_document=ReturnDocument.AFTER)
    except DuplicateKeyError:
        raise EmailTaken("Another account took this email meanwhile.") from None
    if switched is None:  # the account moved on to another address since the link was sent
        raise InvalidOrExpiredToken("This link is invalid or has expired; ask for a new one.")
    return switched


def deleted_email(user_id: ObjectId) -> str:
    """The placeholder e-mail of an erased account: no '@', so no sign-in or registration can match it."""
    return DELETED_PREFIX + str(user_id)


async def erase_user(db: Any, user_id: ObjectId, now: datetime) -> dict | None:
    """Remove personal data from the account document, keeping it as an anonymous tombstone."""
    return await db[COLLECTION].find_one_and_update(
        {"_id": user_id},
        {"$set": {"email": deleted_email(user_id), "password_hash": None, "device_ids": [], "email_verified": False,
                  "pending_email": None, "deleted_at": now, "updated_at": now},
         "$unset": {"identities": "", "locale": ""}},
        projection=users_doc.WITHOUT_LEDGER_STATE, return_document=ReturnDocument.AFTER,
    )
