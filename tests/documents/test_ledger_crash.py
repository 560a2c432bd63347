"""Crashes between the balance update and the entry write are repaired."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId

from documents.wallet import ledger as ledger
from tests.support.barrier import Barrier


class Crash(Exception):
    """Stands in for the process dying at a given database call."""


def crash_at(collection: str, method: str, *, nth: int = 1):
    """Hook that raises on the nth call of collection.method, once."""
    seen = {"count": 0}

    def hook(coll: str, meth: str) -> None:
        if (coll, meth) == (collection, method):
            seen["count"] += 1
            if seen["count"] == nth:
                raise Crash(f"{coll}.{meth}")
    return hook


async def crashed_credit(db: Any, user: ObjectId, amount: int, key: str, **kwargs: Any) -> None:
    """Apply a credit whose process dies right before writing the entry."""
    with pytest.raises(Crash):
        await ledger.credit(db.with_hook(crash_at("transactions", "insert_one")),
                            user, amount, "buy", key, **kwargs)


async def wallet(db: Any, user: ObjectId) -> dict[str, Any]:
    """The raw `points` sub-document."""
    return (await db.users.find_one({"_id": user}))["points"]


async def entries(db: Any, user: ObjectId) -> list[tuple[int, int, int, str]]:
    """(seq, amount, balance_after, key) of every stored entry, oldest first."""
    docs = await db.transactions.find({"user_id": user}).sort("seq", 1).limit(100).to_list(100)
    return [(d["seq"], d["amount"], d["balance_after"], d["idempotency_key"]) for d in docs]


async def test_crash_leaves_the_op_applied_and_pending_in_the_outbox(db, make_user):
    user = await make_user(10)
    await crashed_credit(db, user, 30, "order-1")
    points = await wallet(db, user)
    assert points["balance"] == 40 and points["seq"] == 2
    assert [e["idempotency_key"] for e in points["outbox"]] == ["order-1"]
    assert "pending_since" in points
    assert await ledger.find_entry(db, user, "order-1") is None
    audit = await ledger.verify_ledger(db)
    assert audit.ok and audit.pending == [user]


async def test_next_op_on_the_user_writes_the_crashed_entry_first(db, make_user):
    user = await make_user(10)
    await crashed_credit(db, user, 30, "order-1")
    result = await ledger.debit(db, user, 15, "spend", "gen-1")
    assert (result.entry.seq, result.balance) == (3, 25)
    assert await entries(db, user) == [(1, 10, 10, "seed"), (2, 30, 40, "order-1"),
                                       (3, -15, 25, "gen-1")]
    points = await wallet(db, user)
    assert points["outbox"] == [] and "pending_since" not in points
    assert (await ledger.verify_ledger(db)).ok


async def test_retrying_the_crashed_call_replays_it_without_applying_twice(db, make_user):
    user = await make_user()
    await crashed_credit(db, user, 30, "order-1")
    result = await ledger.credit(db, user, 30, "buy", "order-1")
    assert result.replayed and result.balance == 30 and result.entry.seq == 1
    assert (await ledger.get_balance(db, user)).balance == 30
    assert (await ledger.verify_ledger(db)).ok


async def test_repair_pending_writes_stacked_crashed_entries_in_order(db, make_user):
    user, other = await make_user(10), await make_user(1)
    for i, amount in enumerate((5, 7, 9)):
        await crashed_credit(db, user, amount, f"order-{i}")
    await crashed_credit(db, other, 2, "order-x")
    assert await ledger.repair_pending(db) == 4
    assert await entries(db, user) == [(1, 10, 10, "seed"), (2, 5, 15, "order-0"),
                                       (3, 7, 22, "order-1"), (4, 9, 31, "order-2")]
    assert (await wallet(db, user))["outbox"] == []
    audit = await ledger.verify_ledger(db)
    assert audit.ok and audit.pending == []
    assert await ledger.repair_pending(db) == 0


async def test_repair_pending_respects_older_than(db, make_user):
    user = await make_user()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    await crashed_credit(db, user, 5, "order-1", now=t0)
    assert await ledger.repair_pending(db, older_than=timedelta(minutes=5),
                                       now=t0 + timedelta(minutes=1)) == 0
    assert await ledger.repair_pending(db, older_than=timedelta(minutes=5),
                                       now=t0 + timedelta(minutes=6)) == 1


async def test_repair_pending_pages_through_many_users(db, make_user):
    users = [await make_user() for _ in range(7)]
    for user in users:
        await crashed_credit(db, user, 1, "order-1")
    assert await ledger.repair_pending(db, batch=3) == 7
    assert (await ledger.verify_ledger(db)).ok


async def test_crash_after_the_insert_before_the_pull_is_finished_without_duplicates(db, make_user):
    user = await make_user(10)
    # Call 1 of users.find_one_and_update is the apply, call 2 the $pull.
    crashing = db.with_hook(crash_at("users", "find_one_and_update", nth=2))
    with pytest.raises(Crash):
        await ledger.credit(crashing, user, 30, "buy", "order-1")
    assert await ledger.find_entry(db, user, "order-1") is not None
    assert len((await wallet(db, user))["outbox"]) == 1
    assert await ledger.flush_user(db, user) == 0  # nothing left to insert, only to pull
    assert (await wallet(db, user))["outbox"] == []
    assert await entries(db, user) == [(1, 10, 10, "seed"), (2, 30, 40, "order-1")]
    assert (await ledger.verify_ledger(db)).ok


async def test_crash_before_clearing_pending_since_is_cleaned_up(db, make_user):
    user = await make_user()
    crashing = db.with_hook(crash_at("users", "update_one"))
    with pytest.raises(Crash):
        await ledger.credit(crashing, user, 30, "buy", "order-1")
    points = await wallet(db, user)
    assert points["outbox"] == [] and "pending_since" in points
    assert await ledger.repair_pending(db) == 0
    assert "pending_since" not in await wallet(db, user)


async def test_stale_outbox_is_drift_and_repair_fixes_it(db, make_user):
    user = await make_user()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    await crashed_credit(db, user, 5, "order-1", now=t0)
    audit = await ledger.verify_ledger(db, now=t0 + timedelta(hours=1))
    assert [d.kind for d in audit.drift] == ["stale_outbox"]
    await ledger.repair_pending(db)
    assert (await ledger.verify_ledger(db, now=t0 + timedelta(hours=1))).ok


async def test_racing_flushers_write_each_entry_once(db, make_user):
    user = await make_user()
    for i in range(5):
        await crashed_credit(db, user, i + 1, f"order-{i}")
    racing = db.with_hook(barrier := Barrier(2, "transactions", "insert_one"))  # two flushers insert at once
    written = await asyncio.gather(*(ledger.flush_user(racing, user) for _ in range(5)),
                                   ledger.repair_pending(db),
                                   ledger.debit(db, user, 1, "spend", "gen-1"))
    assert barrier.met
    assert await db.transactions.count_documents({"user_id": user}) == 6
    assert [e[0] for e in await entries(db, user)] == [1, 2, 3, 4, 5, 6]
    assert sum(written[:6]) <= 5  # each crashed entry inserted by exactly one flusher
    assert (await ledger.verify_ledger(db)).ok


async def test_a_database_error_while_writing_the_entry_still_reports_the_applied_op(db, make_user):
    from pymongo.errors import AutoReconnect

    def flaky(coll: str, meth: str) -> None:
        if (coll, meth) == ("transactions", "insert_one"):
            raise AutoReconnect("primary stepped down")

    user = await make_user(10)
    result = await ledger.debit(db.with_hook(flaky), user, 4, "spend", "gen-1")
    assert (result.balance, result.entry.seq, result.replayed) == (6, 2, False)
    assert len((await wallet(db, user))["outbox"]) == 1
    again = await ledger.debit(db, user, 4, "spend", "gen-1")
    assert again.replayed and again.entry == result.entry
    assert (await ledger.verify_ledger(db)).ok


async def test_flush_and_repair_count_only_the_entries_they_wrote(db, make_user):
    user, idle = await make_user(10), await make_user(5)
    assert await ledger.flush_user(db, idle) == 0  # nothing pending
    assert await ledger.flush_user(db, ObjectId()) == 0  # no such user
    await crashed_credit(db, user, 3, "order-1")
    await crashed_credit(db, user, 4, "order-2")
    # A stale flag on a user whose outbox is already empty (a crash after the pull) costs nothing.
    await db.users.update_one({"_id": idle}, {"$set": {"points.pending_since": datetime(2026, 1, 1, tzinfo=UTC)}})
    report = await ledger.repair_users(db)
    assert (report.written, report.skipped) == (2, {})
    assert "pending_since" not in (await wallet(db, idle))
    assert await ledger.flush_user(db, user) == 0 and (await ledger.repair_users(db)).written == 0


async def test_a_failing_database_stops_the_repair_pass_instead_of_skipping_every_user(db, make_user):
    from pymongo.errors import AutoReconnect
    user = await make_user()
    await crashed_credit(db, user, 3, "order-1")
    fails = {"n": 0}

    def primary_gone(collection: str, method: str) -> None:
        if (collection, method) == ("users", "find_one"):
            fails["n"] += 1
            raise AutoReconnect("no primary")

    with pytest.raises(AutoReconnect):
        await ledger.repair_users(db.with_hook(primary_gone))
    assert fails["n"] == 1  # stopped at the first user, did not try (and skip) the rest
    assert (await ledger.repair_users(db)).written == 1


async def test_clearing_a_stale_pending_flag_touches_only_that_user(db, make_user):
    first, second = await make_user(), await make_user()
    stale = datetime(2026, 1, 1, tzinfo=UTC)
    for user in (first, second):
        await db.users.update_one({"_id": user}, {"$set": {"points.pending_since": stale}})
    assert await ledger.flush_user(db, second) == 0
    assert "pending_since" not in await wallet(db, second)
    assert "pending_since" in await wallet(db, first)  # still due for its own repair


async def test_repair_pages_through_every_pending_user_even_one_at_a_time(db, make_user):
    users = [await make_user() for _ in range(3)]
    for i, user in enumerate(users):
        await crashed_credit(db, user, i + 1, f"order-{i}")
    report = await ledger.repair_users(db, batch=1)
    assert (report.written, report.skipped) == (3, {})
    assert (await ledger.verify_ledger(db)).ok


async def test_an_entry_written_by_the_flush_of_a_crashed_op_records_its_points_event(db, raw_db, make_user):
    from documents.events import store as events
    user = await make_user()
    await crashed_credit(db, user, 3, "order-1")
    events.enable(raw_db, ("http://127.0.0.1:9/hook",))
    try:
        assert await ledger.flush_user(raw_db, user) == 1
        entry = await ledger.find_entry(raw_db, user, "order-1")
        stored = await raw_db[events.COLLECTION].find_one({"_id": events.event_id(f"points:{entry.id}")})
        assert stored is not None and stored["type"] == "points.changed" and stored["user_id"] == user
    finally:
        events.disable(raw_db)


async def stray_entry(db: Any, user: ObjectId, seq: int, key: str) -> ObjectId:
    """An entry some older code stored for this user outside the outbox (a seq or key then taken)."""
    doc = {"_id": ObjectId(), "user_id": user, "seq": seq, "idempotency_key": key, "type": "buy", "amount": 1,
           "balance_after": 1, "reference": None, "meta": {}, "created_at": datetime(2026, 1, 1, tzinfo=UTC)}
    await db.transactions.insert_one(doc)
    return doc["_id"]


async def test_a_flush_blocked_by_a_taken_seq_writes_nothing_and_keeps_the_outbox(db, make_user):
    user = await make_user()
    await crashed_credit(db, user, 3, "order-1")
    await stray_entry(db, user, 1, "someone-else")
    assert await ledger.flush_user(db, user) == 0
    assert [e["idempotency_key"] for e in (await wallet(db, user))["outbox"]] == ["order-1"]


async def test_a_flushed_key_already_stored_under_another_entry_is_written_as_a_counted_twin(db, make_user):
    user = await make_user()
    await crashed_credit(db, user, 3, "order-1")
    original = await stray_entry(db, user, 99, "order-1")
    assert await ledger.flush_user(db, user) == 1
    twin = await db.transactions.find_one({"meta.duplicate_of": original})
    assert twin["seq"] == 1 and twin["idempotency_key"].startswith("order-1#dup:")
    assert (await wallet(db, user))["outbox"] == []
