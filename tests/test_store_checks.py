"""The test store refuses what a real MongoDB would: queries no declared index serves, and writes it rejects."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mongomock_motor import AsyncMongoMockClient
from pymongo.errors import OperationFailure, WriteError

from documents import all_indexes, ensure_indexes
from tests.support import index_check
from tests.support.index_check import Index, plan

USERS = [Index("email_unique", (("email", 1),)),
         Index("by_identity", (("identities.provider", 1), ("identities.subject", 1)))]
EVENTS = [Index("pending_order", (("pending", 1), ("order", 1))),
          Index("dead", (("dead", 1),), sparse=True),
          Index("shortfalls", (("created_at", -1),), partial={"type": "clawback", "meta.shortfall": {"$gt": 0}})]
HISTORY = [Index("user_seq", (("user_id", 1), ("seq", -1))), Index("user_type_seq", (("user_id", 1), ("type", 1), ("seq", -1)))]


@pytest.mark.parametrize(("indexes", "query", "sort"), [
    (USERS, {"email": "a@b.c"}, None),
    (USERS, {"_id": 1}, None),
    (USERS, {"identities": {"$elemMatch": {"provider": "vk", "subject": "1"}}}, None),
    (HISTORY, {"user_id": 1}, [("seq", -1)]),
    (HISTORY, {"user_id": 1, "seq": {"$lt": 10}}, [("seq", -1)]),  # equality, sort, range
    (HISTORY, {"user_id": 1}, [("seq", 1)]),  # the index walked backwards
    (HISTORY, {"user_id": 1, "type": "spend"}, [("seq", -1)]),
    (HISTORY, {"user_id": {"$in": [1, 2]}}, [("seq", -1)]),  # one scan per value, merged
    (EVENTS, {"pending": "k"}, [("order", 1)]),
    (EVENTS, {"dead": {"$exists": True, "$ne": []}}, None),  # a sparse index holds exactly those
    (EVENTS, {"dead": {"$ne": None}}, None),
    (EVENTS, {"type": "clawback", "meta.shortfall": {"$gt": 0}}, [("created_at", -1)]),  # partial index walked
    (USERS, {"$or": [{"email": "a@b.c"}, {"_id": 2}]}, None),
    (USERS, {}, [("_id", 1)]),
])
def test_queries_an_index_serves_pass(indexes, query, sort):
    assert plan(indexes, query, sort) is None


@pytest.mark.parametrize(("indexes", "query", "sort", "why"), [
    (USERS, {"nickname": "x"}, None, "no declared index serves filter {'nickname': ['eq']}"),
    (USERS, {}, None, "no filter: a collection scan"),
    (HISTORY, {"type": "spend"}, None, "no declared index"),  # not a prefix
    (HISTORY, {"user_id": 1}, [("created_at", -1)], "with sort"),  # a blocking sort
    (HISTORY, {"user_id": 1, "seq": {"$lt": 3}}, [("amount", 1)], "with sort"),
    (EVENTS, {"dead": None}, None, "no declared index"),  # a sparse index holds no missing fields
    (EVENTS, {"type": "clawback"}, [("created_at", -1)], "with sort"),  # does not imply the partial filter
    (EVENTS, {"pending.0": {"$exists": True}}, None, "no declared index"),
    (USERS, {"$or": [{"email": "a@b.c"}, {"nickname": "x"}]}, None, "no declared index"),
    (USERS, {"$where": "true"}, None, "no filter"),
    (USERS, {"_id": {"$ne": 1}}, None, "no declared index"),  # "everything but" is the whole index
    (USERS, {"email": {"$nin": ["a@b.c"]}}, None, "no declared index"),
    (USERS, {"email": {"$exists": True}}, None, "no declared index"),  # a full index holds missing fields too
])
def test_queries_that_would_scan_are_named(indexes, query, sort, why):
    assert why in plan(indexes, query, sort)


async def test_a_scan_raises_like_notablescan_and_names_collection_filter_and_site():
    db = AsyncMongoMockClient(tz_aware=True)["t"]
    await ensure_indexes(db)
    before = len(index_check.VIOLATIONS)
    with index_check.checking():
        assert await db.users.find_one({"email": "nobody@example.com"}) is None
        with pytest.raises(OperationFailure) as raised:
            await db.users.find_one({"nickname": "x"})
        with pytest.raises(OperationFailure):
            await db.users.find({}).to_list(10)
    assert raised.value.code == 291
    assert "collection scan on users" in str(raised.value) and "nickname" in str(raised.value)
    assert len(index_check.VIOLATIONS) == before + 2
    del index_check.VIOLATIONS[before:]  # recorded on purpose; keep this test green


async def test_test_code_may_scan_but_application_code_may_not():
    db = AsyncMongoMockClient(tz_aware=True)["t"]
    assert await db.users.find({}).to_list(10) == []  # a test looking around is not the application


@pytest.mark.parametrize(("update", "error"), [
    ({"$set": {"a": 1}, "b": 2}, "mixes operators and plain fields"),
    ({"$set": {"$a": 1}}, "$-prefixed field"),
    ({"$set": {"a.$b": 1}}, "$-prefixed field"),
    ({"$set": {"a.b": 1}, "$unset": {"a": ""}}, "would create a conflict"),
    ({"$set": {"a": 1}, "$inc": {"a": 1}}, "would create a conflict"),
    ({"$setOnInsert": {"a": {"b": 1}}, "$set": {"a.b": 2}}, "would create a conflict"),
])
async def test_updates_mongodb_refuses_are_refused(update, error):
    db = AsyncMongoMockClient(tz_aware=True)["t"]
    await db.things.insert_one({"_id": 1, "a": {"b": 0}})
    with index_check.checking(), pytest.raises(WriteError, match=re.escape(error)):
        await db.things.update_one({"_id": 1}, update)
    assert await db.things.find_one({"_id": 1}) == {"_id": 1, "a": {"b": 0}}


async def test_positional_paths_and_disjoint_paths_are_fine():
    db = AsyncMongoMockClient(tz_aware=True)["t"]
    await db.things.insert_one({"_id": 1, "a": [{"b": 0}], "ab": 1})
    with index_check.checking():
        await db.things.update_one({"_id": 1, "a.b": 0}, {"$set": {"a.$.b": 1, "ab": 2}, "$inc": {"c": 1}})
    assert await db.things.find_one({"_id": 1}) == {"_id": 1, "a": [{"b": 1}], "ab": 2, "c": 1}


async def test_text_bson_cannot_encode_and_documents_over_16_mib_are_refused():
    db = AsyncMongoMockClient(tz_aware=True)["t"]
    with index_check.checking():
        with pytest.raises(UnicodeEncodeError):  # what PyMongo raises before sending
            await db.things.insert_one({"reason": "r\ud800"})
        with pytest.raises(UnicodeEncodeError):
            await db.things.update_one({"_id": 1}, {"$set": {"reason": "\udfff"}}, upsert=True)
        with pytest.raises(WriteError, match="16 MiB"):
            await db.things.insert_one({"blob": b"x" * (16 * 1024 * 1024)})
        with pytest.raises(WriteError, match="top-level"):
            await db.things.replace_one({"_id": 1}, {"$bad": 1}, upsert=True)
    assert await db.things.count_documents({}) == 0


def test_the_index_page_lists_every_declared_index():
    page = (Path(__file__).resolve().parent.parent / "docs" / "indexes.md").read_text(encoding="utf-8")
    missing = [f"{collection}.{model.document['name']}" for collection, models in all_indexes().items()
               for model in models if f"`{model.document['name']}`" not in page.split(f"### `{collection}`")[-1]
               .split("### ")[0]]
    assert not missing, f"indexes missing from docs/indexes.md: {missing}"
