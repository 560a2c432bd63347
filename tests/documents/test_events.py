"""The events store: one document per change key, nothing without receivers, per-user heads past a backlog."""

from __future__ import annotations

from bson import ObjectId
from mongomock_motor import AsyncMongoMockClient

from documents.events import store as events


async def test_an_event_is_stored_once_per_key_and_only_for_a_database_with_receivers():
    db = AsyncMongoMockClient(tz_aware=True)["events_test"]
    user = ObjectId()
    assert await events.record(db, "points:1", "points.changed", user, sandbox=False, data={}) is False
    assert await db[events.COLLECTION].count_documents({}) == 0  # no URL: nothing stored
    events.enable(db, ("http://127.0.0.1:9/a", "http://127.0.0.1:9/b"))
    try:
        assert await events.record(db, "points:1", "points.changed", user, sandbox=False, data={"n": 1}) is True
        assert await events.record(db, "points:1", "points.changed", user, sandbox=False, data={"n": 2}) is False
        (doc,) = await db[events.COLLECTION].find({}).to_list(10)
        assert doc["_id"] == events.event_id("points:1") and doc["data"] == {"n": 1}
        assert sorted(s["url"] for s in doc["deliveries"].values()) == ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"]
        assert len(doc["pending"]) == 2
    finally:
        events.disable(db)


async def test_one_users_backlog_does_not_hide_other_users_heads():
    db = AsyncMongoMockClient(tz_aware=True)["events_heads"]
    events.enable(db, ("http://127.0.0.1:9/a",))
    try:
        busy, quiet = ObjectId(), ObjectId()
        for n in range(7):
            await events.record(db, f"busy:{n}", "points.changed", busy, sandbox=False, data={"n": n})
        await events.record(db, "quiet:0", "points.changed", quiet, sandbox=False, data={"n": 0})
        (target,) = events.endpoints(db)
        heads = await events.pending_heads(db, target.key, max_users=10, page=2)
        assert {(h["user_id"], h["data"]["n"]) for h in heads} == {(busy, 0), (quiet, 0)}
    finally:
        events.disable(db)
