"""An op whose entry cannot be stored is refused whole, and repair isolates a user it cannot repair."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import bson
import pytest
from bson import ObjectId

from documents.wallet import ledger as ledger
from documents.wallet.apply import key_hash


async def wallet(db: Any, user: ObjectId) -> dict[str, Any]:
    """The raw `points` sub-document."""
    return (await db.users.find_one({"_id": user}))["points"]


async def applied_unwritten(db: Any, user: ObjectId, amount: int, key: str, meta: dict, now: datetime) -> None:
    """Step 2 of the ledger without step 3, as a crash (or older code) left it: balance moved, entry in the outbox."""
    pending = {"_id": ObjectId(), "type": "admin_grant" if amount > 0 else "spend", "amount": amount,
               "idempotency_key": key, "reference": None, "meta": meta, "created_at": now}
    await db.users.update_one({"_id": user}, {
        "$inc": {"points.balance": amount, "points.seq": 1},
        "$push": {"points.recent": {"k": key_hash(key), "at": now}, "points.outbox": pending},
        "$min": {"points.pending_since": now}})


@pytest.mark.parametrize("meta, reference", [
    ({"reason": "r\ud800"}, None),            # a lone surrogate: valid JSON, not UTF-8
    ({}, "generation:\udfff"),
    ({"note": "x" * (ledger.MAX_ENTRY_BYTES + 1)}, None),
    ({"big": 2**70}, None),                   # past BSON's int64
])
async def test_an_op_that_cannot_be_stored_changes_nothing(db, make_user, meta, reference):
    user = await make_user(130)
    before = await wallet(db, user)
    for attempt in (ledger.debit(db, user, 1, "spend", "poison", meta=meta, reference=reference),
                    ledger.credit(db, user, 1, "refund", "poison", meta=meta, reference=reference),
                    ledger.clawback(db, user, 1, "poison", meta=meta, reference=reference)):
        with pytest.raises(ledger.UnwritableEntry):
            await attempt
    assert await wallet(db, user) == before
    assert await ledger.find_entry(db, user, "poison") is None
    # The same key still works with a storable body, and the wallet is clean.
    assert (await ledger.debit(db, user, 1, "spend", "poison", meta={"reason": "r"})).balance == 129
    assert (await ledger.verify_ledger(db)).ok


async def test_an_entry_of_exactly_max_entry_bytes_is_stored_and_one_byte_more_is_refused(db, make_user):
    user = await make_user(10)
    # The key, reference and meta as one BSON document: MAX_ENTRY_BYTES is its largest allowed size.
    empty = len(bson.encode({"idempotency_key": "edge", "reference": None, "meta": {"note": ""}}))
    with pytest.raises(ledger.UnwritableEntry):
        await ledger.debit(db, user, 1, "spend", "edge", meta={"note": "x" * (ledger.MAX_ENTRY_BYTES + 1 - empty)})
    result = await ledger.debit(db, user, 1, "spend", "edge", meta={"note": "x" * (ledger.MAX_ENTRY_BYTES - empty)})
    assert result.balance == 9 and not result.replayed
    assert (await ledger.find_entry(db, user, "edge")).meta["note"] == "x" * (ledger.MAX_ENTRY_BYTES - empty)
    assert (await ledger.verify_ledger(db)).ok


async def test_repair_skips_the_user_it_cannot_repair_and_repairs_the_others(db, make_user):
    now = datetime(2026, 1, 1, tzinfo=UTC)
    users = [await make_user(10) for _ in range(5)]
    poisoned = users[2]
    for index, user in enumerate(users):
        meta = {"reason": "r\ud800"} if user == poisoned else {"reason": f"ok {index}"}
        await applied_unwritten(db, user, -3, f"crashed-{index}", meta, now)
    report = await ledger.repair_users(db, now=now + timedelta(minutes=1), batch=2)
    assert report.written == 4
    assert list(report.skipped) == [poisoned] and "UnicodeEncodeError" in report.skipped[poisoned]
    for user in users:
        points = await wallet(db, user)
        assert points["balance"] == 7
        assert bool(points["outbox"]) is (user == poisoned)
    audit = await ledger.verify_ledger(db, now=now + timedelta(minutes=1))
    assert not audit.drift and audit.pending == [poisoned]
    # A later op on the poisoned wallet still succeeds (its own entry waits behind the stuck one).
    result = await ledger.debit(db, poisoned, 2, "spend", "after", now=now)
    assert result.balance == 5 and not result.replayed
    assert (await ledger.repair_users(db, now=now + timedelta(minutes=2))).skipped.keys() == {poisoned}
