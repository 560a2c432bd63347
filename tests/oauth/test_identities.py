"""Identity rules on the users collection, including races under a store that yields at every call."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from mongomock_motor import AsyncMongoMockClient

from documents.accounts import identities as identities_doc
from documents.accounts import users as users_doc
from documents.common import EmailTaken
from tests.support.barrier import Barrier
from tests.support.yielding import YieldingDatabase

NOW = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture
async def db():
    raw = AsyncMongoMockClient(tz_aware=True)["identities_test"]
    for module in (users_doc, identities_doc):
        for collection, models in module.INDEXES.items():
            await raw[collection].create_indexes(models)
    return YieldingDatabase(raw)


async def create(db, subject="1", email=None, provider="vk"):
    return await identities_doc.create_user_with_identity(db, provider, subject, email, None, NOW)


async def test_accounts_without_identities_or_email_do_not_collide(db):
    await users_doc.create_user(db, "a@example.com", "hash", None, NOW)
    await users_doc.create_user(db, "b@example.com", "hash", None, NOW)
    (first, _), (second, _) = await create(db, "1"), await create(db, "2")
    assert first["email"] != second["email"]
    assert identities_doc.public_email(first) is None and not identities_doc.has_real_email(first)
    assert await db.users.count_documents({}) == 4


async def test_a_vouched_email_of_an_existing_account_is_never_merged(db):
    await users_doc.create_user(db, "ann@example.com", "hash", None, NOW)
    with pytest.raises(identities_doc.AccountExistsLinkRequired) as err:
        await create(db, "1", email="Ann@Example.com", provider="google")
    assert err.value.details == {"provider": "google"}
    assert await db.users.count_documents({}) == 1


async def test_racing_first_sign_ins_of_one_identity_make_one_account(db):
    racing = db.with_hook(barrier := Barrier(6, "users", "insert_one"))  # all six insert an account at once
    results = await asyncio.gather(*(create(racing, "777") for _ in range(6)))
    assert barrier.met
    ids = {user["_id"] for user, _ in results}
    assert len(ids) == 1
    assert sum(created for _, created in results) >= 1
    assert await db.users.count_documents({}) == 1


async def test_racing_links_of_one_identity_to_two_accounts_have_one_winner(db):
    a = await users_doc.create_user(db, "a@example.com", "hash", None, NOW)
    b = await users_doc.create_user(db, "b@example.com", "hash", None, NOW)
    racing = db.with_hook(barrier := Barrier(2))  # both links past their checks, writing at once
    outcomes = await asyncio.gather(
        *(identities_doc.link_identity(racing, user["_id"], "google", "g-1", None, NOW) for user in (a, b)),
        return_exceptions=True,
    )
    assert barrier.met
    assert sum(isinstance(o, identities_doc.IdentityLinkedElsewhere) for o in outcomes) == 1
    holders = await db.users.count_documents({"identities": {"$elemMatch": {"provider": "google", "subject": "g-1"}}})
    assert holders == 1


async def test_one_identity_per_provider_and_relinking_is_harmless(db):
    user, _ = await create(db, "1")
    again = await identities_doc.link_identity(db, user["_id"], "vk", "1", None, NOW)
    assert len(again["identities"]) == 1
    with pytest.raises(identities_doc.ProviderAlreadyLinked):
        await identities_doc.link_identity(db, user["_id"], "vk", "2", None, NOW)


async def test_racing_unlinks_cannot_remove_every_way_in(db):
    user, _ = await create(db, "1")
    await identities_doc.link_identity(db, user["_id"], "google", "g-1", None, NOW)
    racing = db.with_hook(barrier := Barrier(2))  # both unlinks past their checks, writing at once
    outcomes = await asyncio.gather(
        *(identities_doc.unlink_identity(racing, user["_id"], p, NOW) for p in ("vk", "google")), return_exceptions=True
    )
    assert barrier.met
    assert sum(isinstance(o, identities_doc.LastSignInMethod) for o in outcomes) == 1
    left = await users_doc.get_user(db, user["_id"])
    assert len(left["identities"]) == 1


async def test_unlinking_everything_leaves_no_empty_array(db):
    user = await users_doc.create_user(db, "a@example.com", "hash", None, NOW)
    await identities_doc.link_identity(db, user["_id"], "vk", "1", None, NOW)
    after = await identities_doc.unlink_identity(db, user["_id"], "vk", NOW)
    assert "identities" not in after and "identities" not in await users_doc.get_user(db, user["_id"])
    with pytest.raises(identities_doc.IdentityNotFound):
        await identities_doc.unlink_identity(db, user["_id"], "vk", NOW)


async def test_a_password_without_a_real_email_is_no_way_in(db):
    user, _ = await create(db, "1")
    await db.users.update_one({"_id": user["_id"]}, {"$set": {"password_hash": "hash"}})
    with pytest.raises(identities_doc.LastSignInMethod):
        await identities_doc.unlink_identity(db, user["_id"], "vk", NOW)


async def test_first_password_is_set_once(db):
    await users_doc.create_user(db, "taken@example.com", "hash", None, NOW)
    user, _ = await create(db, "1")
    with pytest.raises(EmailTaken):
        await identities_doc.set_first_password(db, user["_id"], "h1", "taken@example.com", NOW)
    updated = await identities_doc.set_first_password(db, user["_id"], "h1", "New@Example.com", NOW)
    assert updated["email"] == "new@example.com" and identities_doc.can_sign_in_with_password(updated)
    with pytest.raises(identities_doc.PasswordAlreadySet):
        await identities_doc.set_first_password(db, user["_id"], "h2", None, NOW)
