"""Sign-in identities on the `users` collection: Google and VK ID accounts linked to our accounts.

Added to a user document::

    identities: [{provider: "google" | "vk", subject: "1234", linked_at: date, email?: "ann@example.com"}]

Rules and why:

- One (provider, subject) belongs to at most one account: the unique index `identity_unique` on
  (identities.provider, identities.subject). MongoDB builds one key per array element, so the pair is unique
  across accounts. It is *sparse*, not partial: accounts without identities must not all collide on
  (null, null), and mongomock's `create_indexes` drops `partialFilterExpression` (it would make that
  collision real in tests) while honouring `sparse`. mongomock never enforces uniqueness through arrays, so
  every write that adds an identity is followed by a guard query; when two accounts hold one identity, the
  account with the larger _id gives it up (in MongoDB the index refuses the second write first).
- At most one identity per provider per account.
- Accounts created through a provider without an email it vouches for get the placeholder email
  `no-email:<_id>`: the `email_unique` index is not partial, so `null` would collide on the second
  email-less account (in MongoDB and in mongomock alike); changing that index would need a migration of
  every deployment. The placeholder has no "@", so no validated email can equal it; views show it as null.
- Password sign-in needs a password *and* a real email. Unlinking the last identity of an account that has
  no other way in is refused inside the same atomic update, so two concurrent unlinks cannot both win.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from documents.accounts import users as users_doc
from documents.common import Conflict, EmailTaken, NotFound

COLLECTION = users_doc.COLLECTION
NO_EMAIL_PREFIX = "no-email:"
_PLACEHOLDER = re.compile("^" + re.escape(NO_EMAIL_PREFIX))
INDEXES = {
    COLLECTION: [
        IndexModel([("identities.provider", ASCENDING), ("identities.subject", ASCENDING)],
                   unique=True, sparse=True, name="identity_unique"),
    ]
}


class AccountExistsLinkRequired(Conflict):
    """The provider's email belongs to an existing account: sign in to it and link the provider."""

    reason = "account_exists_link_required"


class IdentityLinkedElsewhere(Conflict):
    """This provider account is already linked to another account."""

    reason = "identity_linked_elsewhere"


class ProviderAlreadyLinked(Conflict):
    """The account already has another identity of this provider."""

    reason = "provider_already_linked"


class LastSignInMethod(Conflict):
    """Unlinking would leave the account with no way to sign in."""

    reason = "last_sign_in_method"


class PasswordAlreadySet(Conflict):
    """The account already has a password; change it with the current one."""

    reason = "password_already_set"


class IdentityNotFound(NotFound):
    """The account has no identity of this provider."""

    reason = "identity_not_found"


def has_real_email(user: dict) -> bool:
    """True unless the account's email is the placeholder of a provider account without one."""
    email = user.get("email")
    return isinstance(email, str) and not email.startswith(NO_EMAIL_PREFIX)


def public_email(user: dict) -> str | None:
    """The email to show: the real one, or None for the placeholder."""
    return user["email"] if has_real_email(user) else None


def can_sign_in_with_password(user: dict) -> bool:
    """True when the account has a password and a real email to log in with."""
    return bool(user.get("password_hash")) and has_real_email(user)


async def find_user_by_identity(db: Any, provider: str, subject: str) -> dict | None:
    """The account holding this provider identity, or None."""
    return await db[COLLECTION].find_one(
        {"identities": {"$elemMatch": {"provider": provider, "subject": subject}}}, users_doc.WITHOUT_LEDGER_STATE
    )


def _entry(provider: str, subject: str, email: str | None, now: datetime) -> dict:
    entry: dict[str, Any] = {"provider": provider, "subject": subject, "linked_at": now}
    if email:
        entry["email"] = users_doc.normalize_email(email)
    return entry


class _DocumentBuilder:
    """Stands in for the database so users.create_user builds the new account without storing it."""

    doc: dict | None = None

    def __getitem__(self, collection: str) -> _DocumentBuilder:
        return self

    async def insert_one(self, doc: dict) -> None:
        self.doc = doc


async def _holder_won(db: Any, provider: str, subject: str, user_id: ObjectId) -> bool:
    """After our write: does an account with a smaller _id hold the same identity? (the guard, see above)"""
    other = await db[COLLECTION].find_one(
        {"identities": {"$elemMatch": {"provider": provider, "subject": subject}}, "_id": {"$ne": user_id}}, {"_id": 1}
    )
    return other is not None and other["_id"] < user_id


async def create_user_with_identity(
    db: Any, provider: str, subject: str, email: str | None, device_id: str | None, now: datetime
) -> tuple[dict, bool]:
    """Sign-in of an unknown identity: (new account, True), or (the account that won a race, False).

    A vouched-for email that an account already uses raises AccountExistsLinkRequired: never merged silently.
    """
    if email and await users_doc.find_user_by_email(db, email) is not None:
        raise AccountExistsLinkRequired("An account with this email exists; sign in and link this provider.",
                                        provider=provider)
    builder = _DocumentBuilder()
    # Built by users.create_user itself so the new account has exactly the shape registration gives it.
    doc = await users_doc.create_user(builder, email or "", None, device_id, now)
    doc["email"] = users_doc.normalize_email(email) if email else NO_EMAIL_PREFIX + str(doc["_id"])
    doc["identities"] = [_entry(provider, subject, email, now)]
    doc["email_verified"] = bool(email)  # only an address the provider vouches for (verified) reaches here
    try:
        await db[COLLECTION].insert_one(doc)
    except DuplicateKeyError:
        winner = await find_user_by_identity(db, provider, subject)
        if winner is not None:
            return winner, False
        if email:
            raise AccountExistsLinkRequired("An account with this email exists; sign in and link this provider.",
                                            provider=provider) from None
        raise
    if await _holder_won(db, provider, subject, doc["_id"]):
        await db[COLLECTION].delete_one({"_id": doc["_id"], "password_hash": None})
        winner = await find_user_by_identity(db, provider, subject)
        if winner is not None:
            return winner, False
    return doc, True


async def link_identity(
    db: Any, user_id: ObjectId, provider: str, subject: str, email: str | None, now: datetime
) -> dict:
    """Link a verified identity to the account; linking the same one again is harmless."""
    holder = await find_user_by_identity(db, provider, subject)
    if holder is not None:
        if holder["_id"] == user_id:
            return holder
        raise IdentityLinkedElsewhere("This provider account is linked to another account.", provider=provider)
    try:
        user = await db[COLLECTION].find_one_and_update(
            {"_id": user_id, "identities.provider": {"$ne": provider}},
            {"$push": {"identities": _entry(provider, subject, email, now)}, "$set": {"updated_at": now}},
            projection=users_doc.WITHOUT_LEDGER_STATE, return_document=ReturnDocument.AFTER,
        )
    except DuplicateKeyError:
        raise IdentityLinkedElsewhere("This provider account is linked to another account.", provider=provider) from None
    if user is None:
        await users_doc.get_user(db, user_id)  # NotFound when the account is gone
        raise ProviderAlreadyLinked("Another account of this provider is linked; unlink it first.", provider=provider)
    if await _holder_won(db, provider, subject, user_id):
        await db[COLLECTION].update_one({"_id": user_id}, {"$pull": {"identities": {"provider": provider, "subject": subject}}})
        raise IdentityLinkedElsewhere("This provider account is linked to another account.", provider=provider)
    return user


async def unlink_identity(db: Any, user_id: ObjectId, provider: str, now: datetime) -> dict:
    """Remove the account's identity of this provider, unless it is the last way to sign in."""
    another_way_in = {"$or": [
        {"identities.1": {"$exists": True}},
        {"password_hash": {"$type": "string"}, "email": {"$not": _PLACEHOLDER}},
    ]}
    user = await db[COLLECTION].find_one_and_update(
        {"_id": user_id, "identities.provider": provider, **another_way_in},
        {"$pull": {"identities": {"provider": provider}}, "$set": {"updated_at": now}},
        projection=users_doc.WITHOUT_LEDGER_STATE, return_document=ReturnDocument.AFTER,
    )
    if user is not None:
        if not user.get("identities"):
            # No empty arrays left behind: the sparse unique index should only ever see real identities.
            await db[COLLECTION].update_one({"_id": user_id, "identities": {"$size": 0}}, {"$unset": {"identities": ""}})
            user.pop("identities", None)
        return user
    current = await users_doc.get_user(db, user_id)
    if not any(i.get("provider") == provider for i in current.get("identities") or []):
        raise IdentityNotFound("No account of this provider is linked.", provider=provider)
    raise LastSignInMethod("This is the account's only way to sign in; set a password or link another provider first.",
                           provider=provider)


async def set_first_password(
    db: Any, user_id: ObjectId, password_hash: str, email: str | None, now: datetime
) -> dict:
    """Give a provider-only account its first password (and email); PasswordAlreadySet if it has one."""
    changes: dict[str, Any] = {"password_hash": password_hash, "updated_at": now}
    if email:
        changes["email"] = users_doc.normalize_email(email)
    try:
        user = await db[COLLECTION].find_one_and_update(
            {"_id": user_id, "password_hash": None}, {"$set": changes},
            projection=users_doc.WITHOUT_LEDGER_STATE, return_document=ReturnDocument.AFTER,
        )
    except DuplicateKeyError:
        raise EmailTaken("An account with this email already exists.") from None
    if user is None:
        await users_doc.get_user(db, user_id)
        raise PasswordAlreadySet("This account already has a password; give currentPassword to change it.")
    return user
