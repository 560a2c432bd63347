"""The yielding test proxy is transparent and really yields."""

from __future__ import annotations

import asyncio

from tests.support.yielding import YieldingCollection, YieldingDatabase


async def test_collections_by_item_attribute_and_getter_share_data(db):
    await db["things"].insert_one({"_id": 1, "n": 1})
    assert isinstance(db.things, YieldingCollection)
    assert await db.things.find_one({"_id": 1}) == {"_id": 1, "n": 1}
    assert await db.get_collection("things").count_documents({}) == 1
    assert await db.unwrapped["things"].count_documents({}) == 1


async def test_cursor_chaining_aggregate_and_async_for_work(db):
    await db.things.insert_many([{"_id": i, "g": i % 2} for i in range(6)])
    docs = await db.things.find({}, {"_id": 1}).sort("_id", -1).skip(1).limit(3).to_list(3)
    assert [d["_id"] for d in docs] == [4, 3, 2]
    grouped = await db.things.aggregate([{"$group": {"_id": "$g", "n": {"$sum": 1}}},
                                         {"$sort": {"_id": 1}}]).to_list(None)
    assert grouped == [{"_id": 0, "n": 3}, {"_id": 1, "n": 3}]
    assert [d["_id"] async for d in db.things.find({"g": 1}).sort("_id", 1)] == [1, 3, 5]


async def test_every_call_yields_before_and_after(db):
    order: list[str] = []

    async def other() -> None:
        order.append("other")

    async def call() -> None:
        order.append("start")
        task = asyncio.ensure_future(other())
        await db.things.find_one({})
        order.append("end")
        await task

    await call()
    assert order == ["start", "other", "end"]


async def test_hook_can_fail_a_chosen_call(raw_db):
    def hook(collection: str, method: str) -> None:
        if (collection, method) == ("things", "insert_one"):
            raise RuntimeError("boom")

    db = YieldingDatabase(raw_db, hook=hook)
    try:
        await db.things.insert_one({"_id": 1})
    except RuntimeError:
        pass
    assert await db.things.count_documents({}) == 0
    await db.with_hook(None).things.insert_one({"_id": 1})
    assert await db.things.count_documents({}) == 1
