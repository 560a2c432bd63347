"""The `sessions` collection: one document per sign-in (a refresh-token family) with rotation rules.

Refresh tokens are opaque random strings; only their SHA-256 is stored. Each refresh rotates the
token in one atomic update that matches the presented hash, so two racing refreshes cannot both
win. A hash that was already rotated away is "reuse" — the token was copied — and revokes the
whole session, except within a short grace window after its rotation, where a client that lost
the response may retry and get a fresh pair; the token that retry replaces counts as rotated
away, so presenting it later (a thief's copy) still ends the session. Sessions end when idle for too long, at
an absolute lifetime, on logout, or when the password or email changes.

Document shape::

    {_id: "s_...", user_id: ObjectId, device_id, created_at, last_used_at, idle_expires_at,
     expires_at, refresh_hash, previous_hash, rotated_at, used_hashes: [...last 20],
     revoked_at: null | date, revoked_reason: null | "logout" | "reuse" | ..., purge_at}
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument

from documents.common import NotFound, Unauthorized

COLLECTION = "sessions"
USED_HASHES_KEPT = 20
RETENTION_AFTER_END = timedelta(days=30)
MAX_LISTED = 100
INDEXES = {
    COLLECTION: [
        IndexModel([("refresh_hash", ASCENDING)], name="refresh_hash"),
        IndexModel([("used_hashes", ASCENDING)], name="used_hashes"),
        # A refresh retried within the grace window is found by the token it replaced.
        IndexModel([("previous_hash", ASCENDING)], sparse=True, name="previous_hash"),
        IndexModel([("user_id", ASCENDING), ("last_used_at", DESCENDING)], name="user_sessions"),
        IndexModel([("purge_at", ASCENDING)], expireAfterSeconds=0, name="purge_ttl"),
    ]
}


class InvalidRefreshToken(Unauthorized):
    """The refresh token is unknown, expired or belongs to an ended session."""

    reason = "invalid_refresh_token"


class RefreshTokenReused(Unauthorized):
    """An already rotated refresh token was presented again; the session has been revoked."""

    reason = "refresh_token_reused"

    def __init__(self, session_id: str, user_id: ObjectId) -> None:
        super().__init__("Refresh token was already used; the session has been ended.")
        self.session_id = session_id
        self.user_id = user_id


def hash_token(token: str) -> str:
    """SHA-256 of a refresh token: the only form it is stored in."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _new_refresh_token() -> str:
    return "rt_" + secrets.token_urlsafe(32)


def _active_filter(now: datetime) -> dict:
    return {"revoked_at": None, "expires_at": {"$gt": now}, "idle_expires_at": {"$gt": now}}


async def create_session(
    db: Any, user_id: ObjectId, device_id: str | None, now: datetime, *, idle_ttl: timedelta, absolute_ttl: timedelta
) -> tuple[dict, str]:
    """Start a session; return (session document, refresh token)."""
    token = _new_refresh_token()
    expires_at = now + absolute_ttl
    doc = {
        "_id": "s_" + secrets.token_hex(12),
        "user_id": user_id,
        "device_id": device_id,
        "created_at": now,
        "last_used_at": now,
        "idle_expires_at": min(now + idle_ttl, expires_at),
        "expires_at": expires_at,
        "refresh_hash": hash_token(token),
        "previous_hash": None,
        "rotated_at": None,
        "used_hashes": [],
        "revoked_at": None,
        "revoked_reason": None,
        "purge_at": expires_at + RETENTION_AFTER_END,
    }
    await db[COLLECTION].insert_one(doc)
    return doc, token


async def rotate_refresh_token(
    db: Any, token: str, now: datetime, *, idle_ttl: timedelta, grace: timedelta
) -> tuple[dict, str]:
    """Exchange a refresh token for a new one; detect and punish reuse of rotated tokens."""
    presented = hash_token(token)
    new_token = _new_refresh_token()
    sessions = db[COLLECTION]
    session = await sessions.find_one_and_update(
        {"refresh_hash": presented, **_active_filter(now)},
        {
            "$set": {
                "refresh_hash": hash_token(new_token),
                "previous_hash": presented,
                "rotated_at": now,
                "last_used_at": now,
                "idle_expires_at": now + idle_ttl,
            },
            "$push": {"used_hashes": {"$each": [presented], "$slice": -USED_HASHES_KEPT}},
        },
        return_document=ReturnDocument.AFTER,
    )
    if session is None:
        session = await _rotate_within_grace(sessions, presented, hash_token(new_token), now, idle_ttl, grace)
    if session is not None:
        return session, new_token
    reused = await sessions.find_one({"used_hashes": presented})
    if reused is not None:
        if reused["revoked_at"] is None:
            await revoke_session(db, reused["_id"], "refresh_token_reused", now)
        raise RefreshTokenReused(reused["_id"], reused["user_id"])
    raise InvalidRefreshToken("Refresh token is invalid or expired.")


async def _rotate_within_grace(
    sessions: Any, presented: str, new_hash: str, now: datetime, idle_ttl: timedelta, grace: timedelta
) -> dict | None:
    """A client that retried a refresh whose response it lost presents the previous token again.

    The token that retry supersedes was handed out but (for an honest client) never received, so
    it joins `used_hashes`: whoever presents it later holds a copy, and that ends the session even
    after the grace window, cutting off a thief who won the retry. The grace window counts from
    the first rotation of the presented token (`rotated_at` is left alone), so repeated retries
    cannot stretch it. The update matches the superseded hash, so a concurrent rotation makes it
    miss rather than lose a token.
    """
    for _ in range(3):
        window = {"previous_hash": presented, "rotated_at": {"$gt": now - grace}, **_active_filter(now)}
        current = await sessions.find_one(window, {"refresh_hash": 1})
        if current is None:
            return None
        superseded = current["refresh_hash"]
        session = await sessions.find_one_and_update(
            {"_id": current["_id"], "refresh_hash": superseded, **window},
            {
                "$set": {"refresh_hash": new_hash, "last_used_at": now, "idle_expires_at": now + idle_ttl},
                "$push": {"used_hashes": {"$each": [superseded], "$slice": -USED_HASHES_KEPT}},
            },
            return_document=ReturnDocument.AFTER,
        )
        if session is not None:
            return session
    return None


async def find_active_session(db: Any, session_id: str, now: datetime) -> dict | None:
    """Return the session if it exists and has not ended, else None."""
    return await db[COLLECTION].find_one({"_id": session_id, **_active_filter(now)})


async def revoke_session(
    db: Any, session_id: str, reason: str, now: datetime, *, user_id: ObjectId | None = None
) -> bool:
    """End one session (optionally only if it belongs to user_id); True if it was active."""
    query: dict[str, Any] = {"_id": session_id, "revoked_at": None}
    if user_id is not None:
        query["user_id"] = user_id
    result = await db[COLLECTION].update_one(
        query, {"$set": {"revoked_at": now, "revoked_reason": reason, "purge_at": now + RETENTION_AFTER_END}}
    )
    return result.modified_count == 1


async def end_session_for_user(db: Any, user_id: ObjectId, session_id: str, reason: str, now: datetime) -> None:
    """End a session of this user, or raise NotFound if the user has no such active session."""
    session = await find_active_session(db, session_id, now)
    if session is None or session["user_id"] != user_id:
        raise NotFound("Session not found.", reason="session_not_found")
    await revoke_session(db, session_id, reason, now, user_id=user_id)


async def find_session_by_refresh_token(db: Any, token: str) -> dict | None:
    """Return the session a current refresh token belongs to, or None."""
    return await db[COLLECTION].find_one({"refresh_hash": hash_token(token)})


async def revoke_user_sessions(
    db: Any, user_id: ObjectId, reason: str, now: datetime, *, keep: str | None = None
) -> list[str]:
    """End every active session of a user except `keep`; return the ended session ids."""
    query: dict[str, Any] = {"user_id": user_id, "revoked_at": None}
    if keep is not None:
        query["_id"] = {"$ne": keep}
    ids = [doc["_id"] async for doc in db[COLLECTION].find(query, {"_id": 1})]
    if ids:
        await db[COLLECTION].update_many(
            {"_id": {"$in": ids}, "revoked_at": None},
            {"$set": {"revoked_at": now, "revoked_reason": reason, "purge_at": now + RETENTION_AFTER_END}},
        )
    return ids


async def list_active_sessions(db: Any, user_id: ObjectId, now: datetime) -> list[dict]:
    """The user's active sessions, most recently used first (at most MAX_LISTED)."""
    cursor = (
        db[COLLECTION]
        .find({"user_id": user_id, **_active_filter(now)})
        .sort("last_used_at", DESCENDING)
        .limit(MAX_LISTED)
    )
    return await cursor.to_list(MAX_LISTED)
