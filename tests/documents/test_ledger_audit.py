"""verify_ledger: clean ledgers pass, injected drift is found and attributed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bson import ObjectId

from documents.wallet import ledger as ledger
from tests.documents.test_ledger_unwritable import applied_unwritten


async def history(db, make_user, *ops: int) -> ObjectId:
    """A user with one credit/debit per signed amount, in order."""
    user = await make_user()
    for i, amount in enumerate(ops):
        if amount > 0:
            await ledger.credit(db, user, amount, "buy", f"op-{i}")
        else:
            await ledger.debit(db, user, -amount, "spend", f"op-{i}")
    return user


def kinds(audit) -> set[tuple[ObjectId, str]]:
    """The (user, kind) pairs of an audit's drift."""
    return {(d.user_id, d.kind) for d in audit.drift}


async def test_clean_ledger_is_ok(db, make_user):
    await history(db, make_user, 50, -20, 5)
    await history(db, make_user)
    audit = await ledger.verify_ledger(db)
    assert audit.ok and audit.drift == [] and audit.pending == []
    assert (audit.users_checked, audit.entries_checked) == (2, 3)


async def test_manually_incremented_balance_is_balance_drift(db, make_user):
    bad = await history(db, make_user, 50, -20)
    good = await history(db, make_user, 10)
    await db.users.update_one({"_id": bad}, {"$inc": {"points.balance": 7}})
    audit = await ledger.verify_ledger(db)
    assert not audit.ok
    assert audit.drift == [ledger.Drift(bad, "balance", 30, 37)]
    assert (await ledger.verify_ledger(db, [good])).ok


async def test_deleted_middle_entry_is_seq_chain_and_balance_drift(db, make_user):
    user = await history(db, make_user, 50, -20, 5)
    await db.transactions.delete_one({"user_id": user, "seq": 2})
    audit = await ledger.verify_ledger(db)
    assert kinds(audit) == {(user, "seq"), (user, "chain"), (user, "balance")}
    gap = [d for d in audit.drift if d.kind == "seq" and d.seq is not None]
    assert (gap[0].expected, gap[0].actual) == (2, 3)
    # Also reported once for the user: the wallet counts 3 ops, 2 entries are left.
    assert ledger.Drift(user, "seq", 3, 2) in audit.drift


async def test_deleted_last_entry_is_seq_and_balance_drift(db, make_user):
    user = await history(db, make_user, 50, -20)
    await db.transactions.delete_one({"user_id": user, "seq": 2})
    assert kinds(await ledger.verify_ledger(db)) == {(user, "seq"), (user, "balance")}


async def test_tampered_balance_after_is_chain_drift(db, make_user):
    user = await history(db, make_user, 50, -20, 5)
    await db.transactions.update_one({"user_id": user, "seq": 2}, {"$set": {"balance_after": 31}})
    audit = await ledger.verify_ledger(db)
    # 50 - 20 is 30, not 31; and the next entry (+5) no longer follows from the 31 recorded before it.
    assert audit.drift == [ledger.Drift(user, "chain", 30, 31, 2), ledger.Drift(user, "chain", 36, 35, 3)]


async def test_negative_balance_outside_an_allowed_clawback_is_drift(db, make_user):
    user = await history(db, make_user, 5)
    forged = {"_id": ObjectId(), "user_id": user, "seq": 2, "type": "admin_debit", "amount": -8,
              "balance_after": -3, "reference": None, "idempotency_key": "forged",
              "created_at": (await ledger.find_entry(db, user, "op-0")).created_at, "meta": {}}
    await db.transactions.insert_one(forged)
    await db.users.update_one({"_id": user}, {"$inc": {"points.balance": -8, "points.seq": 1}})
    assert kinds(await ledger.verify_ledger(db)) == {(user, "negative")}


async def test_entries_of_a_missing_user_are_reported(db, make_user):
    user = await history(db, make_user, 5)
    await db.users.delete_one({"_id": user})
    audit = await ledger.verify_ledger(db, [user])
    assert kinds(audit) == {(user, "missing_user")} and audit.users_checked == 0


async def test_audit_during_live_traffic_reports_no_false_drift(db, make_user):
    users = [await make_user(20) for _ in range(3)]
    traffic = [ledger.debit(db, u, 1, "spend", f"g{i}") for u in users for i in range(15)]
    traffic += [ledger.credit(db, u, 2, "buy", f"c{i}") for u in users for i in range(5)]
    audits = [ledger.verify_ledger(db, batch=2) for _ in range(5)]
    results = await asyncio.gather(*traffic, *audits)
    for audit in results[len(traffic):]:
        assert audit.ok, audit.drift
    assert (await ledger.verify_ledger(db)).entries_checked == 3 * 21


async def test_spending_the_whole_balance_down_to_zero_is_not_drift(db, make_user):
    user = await history(db, make_user, 50, -20, -30)
    audit = await ledger.verify_ledger(db)
    assert audit.ok and audit.entries_checked == 3
    assert (await ledger.get_balance(db, user)).balance == 0


async def test_only_a_clawback_recorded_with_allow_negative_may_go_below_zero(db, make_user):
    allowed = await history(db, make_user, 5)
    await ledger.clawback(db, allowed, 8, "refund-1", allow_negative=True)  # 5 - 8 = -3
    floored = await ledger.clawback(db, allowed, 4, "refund-2")  # nothing left to take: 0 taken, still -3
    assert (floored.entry.amount, floored.balance) == (0, -3)
    created_at = (await ledger.find_entry(db, allowed, "op-0")).created_at

    async def forged_below_zero(type: str, meta: dict) -> ObjectId:
        user = await history(db, make_user, 5)
        await db.transactions.insert_one({
            "_id": ObjectId(), "user_id": user, "seq": 2, "type": type, "amount": -8, "balance_after": -3,
            "reference": None, "idempotency_key": "forged", "created_at": created_at, "meta": meta})
        await db.users.update_one({"_id": user}, {"$inc": {"points.balance": -8, "points.seq": 1}})
        return user

    plain_clawback = await forged_below_zero("clawback", {"requested": 8, "shortfall": 0})
    flagged_debit = await forged_below_zero("admin_debit", {"allow_negative": True})
    audit = await ledger.verify_ledger(db)
    assert set(audit.drift) == {ledger.Drift(user, "negative", 0, -3, 2) for user in (plain_clawback, flagged_debit)}
    assert len(audit.drift) == 2
    assert audit.users_checked == 3 and audit.entries_checked == 3 + 2 + 2


async def test_a_user_who_never_had_a_wallet_is_clean(db, make_user):
    await make_user(wallet=False)
    audit = await ledger.verify_ledger(db)
    assert audit.ok and (audit.users_checked, audit.entries_checked) == (1, 0)


async def test_an_outbox_older_than_five_minutes_is_stale_drift_by_default(db, make_user):
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    stale, on_the_edge, fresh = await make_user(10), await make_user(10), await make_user(10)
    await applied_unwritten(db, stale, -3, "crashed-1", {}, now - timedelta(minutes=5, seconds=30))
    await applied_unwritten(db, on_the_edge, -3, "crashed-2", {}, now - timedelta(minutes=5))
    await applied_unwritten(db, fresh, -3, "crashed-3", {}, now - timedelta(minutes=4, seconds=30))
    audit = await ledger.verify_ledger(db, now=now)
    assert audit.drift == [ledger.Drift(stale, "stale_outbox", timedelta(minutes=5), timedelta(minutes=5, seconds=30))]
    assert audit.pending == [on_the_edge, fresh]  # exactly five minutes old is still pending
