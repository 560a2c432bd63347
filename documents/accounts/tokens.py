"""The `account_tokens` collection: single-use links for password reset and e-mail verification.

A token is 32 random bytes (256 bits, base64url); only its SHA-256 is stored, as `_id`, so a
database leak yields no usable link. Using a token deletes it in the same atomic operation that
finds it (`find_one_and_delete` filtered on purpose and expiry), so two racing uses cannot both
succeed. Issuing a token of a purpose deletes the account's older tokens of that purpose: only the
newest link works. Expired tokens are removed by a TTL index.

Document shape::

    {_id: sha256 hex, user_id, purpose: "password_reset" | "email_verify", email (the address the
     link was sent to), created_at, expires_at}
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, IndexModel

from documents.common import Invalid

COLLECTION = "account_tokens"
PURPOSES = ("password_reset", "email_verify")
INDEXES = {
    COLLECTION: [
        IndexModel([("user_id", ASCENDING), ("purpose", ASCENDING)], name="user_purpose"),
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expires_ttl"),
    ]
}


class InvalidOrExpiredToken(Invalid):
    """The link's token is unknown, already used, replaced by a newer one, or expired."""

    reason = "invalid_or_expired_token"


def token_hash(token: str) -> str:
    """SHA-256 of a token: the only form stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def issue(db: Any, user_id: ObjectId, purpose: str, email: str, now: datetime, ttl: timedelta) -> str:
    """Create a token for `purpose`, replacing the account's older ones; return the token itself."""
    token = secrets.token_urlsafe(32)
    await db[COLLECTION].delete_many({"user_id": user_id, "purpose": purpose})
    await db[COLLECTION].insert_one({"_id": token_hash(token), "user_id": user_id, "purpose": purpose,
                                     "email": email, "created_at": now, "expires_at": now + ttl})
    return token


async def consume(db: Any, token: str, purpose: str, now: datetime) -> dict:
    """Use a token once: return its document (now deleted), or raise InvalidOrExpiredToken."""
    if not isinstance(token, str) or not token:
        raise InvalidOrExpiredToken("This link is invalid or has expired; ask for a new one.")
    doc = await db[COLLECTION].find_one_and_delete(
        {"_id": token_hash(token), "purpose": purpose, "expires_at": {"$gt": now}})
    if doc is None:
        raise InvalidOrExpiredToken("This link is invalid or has expired; ask for a new one.")
    return doc


async def forget_user(db: Any, user_id: ObjectId) -> None:
    """Delete every token of an account."""
    await db[COLLECTION].delete_many({"user_id": user_id})
