"""Concurrency: the yielding proxy exposes races, and the ledger survives them."""

from __future__ import annotations

import asyncio
from typing import Any

from bson import ObjectId

from documents import wallet
from documents.wallet import InsufficientPoints, LedgerResult
from tests.support.barrier import Barrier
from tests.support.yielding import YieldingDatabase


async def naive_spend(db: Any, user_id: ObjectId, amount: int) -> None:
    """Read-check-write with no atomic guard: the bug the ledger exists to prevent."""
    doc = await db.users.find_one({"_id": user_id}, {"points.balance": 1})
    balance = doc["points"]["balance"]
    if balance < amount:
        raise InsufficientPoints(balance)
    await db.users.update_one({"_id": user_id}, {"$set": {"points.balance": balance - amount}})


async def test_naive_spend_double_spends_under_the_yielding_proxy(db, make_user):
    user = await make_user(10)
    results = await asyncio.gather(naive_spend(db, user, 10), naive_spend(db, user, 10),
                                   return_exceptions=True)
    assert results == [None, None]  # 20 points "spent" out of 10
    assert (await wallet.get_balance(db, user)).balance == 0


async def test_without_the_proxy_mongomock_hides_the_same_race(raw_db, make_user):
    user = await make_user(10)
    results = await asyncio.gather(naive_spend(raw_db, user, 10), naive_spend(raw_db, user, 10),
                                   return_exceptions=True)
    assert results[0] is None and isinstance(results[1], InsufficientPoints)


async def test_debit_does_not_double_spend_under_the_yielding_proxy(db, make_user):
    user = await make_user(10)
    racing = db.with_hook(barrier := Barrier(2))  # both debits sized on 10, at their update at once
    results = await asyncio.gather(wallet.debit(racing, user, 10, "spend", "a"),
                                   wallet.debit(racing, user, 10, "spend", "b"),
                                   return_exceptions=True)
    assert barrier.met
    assert sorted(type(r).__name__ for r in results) == ["InsufficientPoints", "LedgerResult"]
    assert (await wallet.get_balance(db, user)).balance == 0
    assert (await wallet.verify_ledger(db)).ok


async def test_500_concurrent_debits_of_1_against_100_points_spend_exactly_100(db, make_user):
    user = await make_user(100)
    racing = db.with_hook(barrier := Barrier(200))  # twice what the wallet pays for, at the update at once
    results = await asyncio.gather(
        *(wallet.debit(racing, user, 1, "spend", f"gen-{i}") for i in range(500)),
        return_exceptions=True)
    assert barrier.met
    ok = [r for r in results if isinstance(r, LedgerResult)]
    short = [r for r in results if isinstance(r, InsufficientPoints)]
    assert len(ok) == 100 and len(short) == 400
    assert not [r for r in ok if r.replayed]
    assert sorted(r.balance for r in ok) == list(range(100))
    assert all(r.balance == 0 for r in short)
    assert (await wallet.get_balance(db, user)).balance == 0
    assert await db.transactions.count_documents({"user_id": user, "type": "spend"}) == 100
    audit = await wallet.verify_ledger(db)
    assert audit.ok, audit.drift
    assert audit.entries_checked == 101 and not audit.pending


async def test_same_credit_key_raced_by_20_callers_applies_once(db, make_user):
    user = await make_user()
    racing = db.with_hook(barrier := Barrier(20))  # all 20 past the pre-check, at the update together
    results = await asyncio.gather(
        *(wallet.credit(racing, user, 250, "buy", "rustore:order-1", reference="order-1")
          for _ in range(20)))
    assert barrier.met
    assert len({(r.entry, r.balance) for r in results}) == 1
    assert sorted(r.replayed for r in results) == [False] + [True] * 19
    assert results[0].balance == 250
    assert (await wallet.get_balance(db, user)).balance == 250
    assert await db.transactions.count_documents({"user_id": user}) == 1
    assert (await wallet.verify_ledger(db)).ok


async def test_same_debit_key_raced_with_other_traffic_applies_once(db, make_user):
    user = await make_user(100)
    racing = db.with_hook(barrier := Barrier(30))  # all 30 calls, the 10 duplicates among them, at the update at once
    calls = [wallet.debit(racing, user, 7, "spend", "gen-dup") for _ in range(10)]
    calls += [wallet.credit(racing, user, 1, "subscription_grant", f"sub-{i}") for i in range(10)]
    calls += [wallet.debit(racing, user, 1, "spend", f"gen-{i}") for i in range(10)]
    results = await asyncio.gather(*calls)
    assert barrier.met
    dup = results[:10]
    assert len({r.entry for r in dup}) == 1 and sum(not r.replayed for r in dup) == 1
    assert (await wallet.get_balance(db, user)).balance == 100 - 7 + 10 - 10
    assert (await wallet.verify_ledger(db)).ok


async def test_concurrent_ops_on_many_users_stay_independent(db, make_user):
    users = [await make_user(5) for _ in range(5)]
    racing = db.with_hook(barrier := Barrier(40))  # every op of every user at its update at once
    await asyncio.gather(*(wallet.debit(racing, u, 1, "spend", f"k{i}")
                           for u in users for i in range(8)), return_exceptions=True)
    assert barrier.met
    for u in users:
        assert (await wallet.get_balance(db, u)).balance == 0
    audit = await wallet.verify_ledger(db)
    assert audit.ok and audit.users_checked == 5 and audit.entries_checked == 30


async def test_a_barrier_is_not_met_by_callers_arriving_one_after_another():
    barrier = Barrier(2, timeout=0.05)
    for _ in range(2):
        await barrier("users", "find_one_and_update")  # the first waits its timeout out alone
    assert barrier.arrived == 2 and not barrier.met


async def test_proxy_hook_sees_every_collection_call(raw_db, make_user):
    calls: list[tuple[str, str]] = []
    db = YieldingDatabase(raw_db, hook=lambda coll, method: calls.append((coll, method)))
    user = await make_user()
    await wallet.credit(db, user, 5, "buy", "k")
    assert ("users", "find_one_and_update") in calls
    assert ("transactions", "insert_one") in calls


async def test_a_debit_that_misses_and_then_finds_exactly_its_amount_spends_it_all(db, make_user):
    # The guarded update misses (5 points, 10 asked); a credit lands before the debit re-reads the
    # wallet, which then holds exactly 10: the retry takes them all instead of reporting a shortfall.
    user = await make_user(5)
    landed: list[LedgerResult] = []

    async def credit_lands() -> None:
        landed.append(await wallet.credit(db, user, 5, "buy", "order-2"))

    def hook(collection: str, method: str) -> Any:
        return credit_lands() if (collection, method) == ("users", "find_one") and not landed else None

    result = await wallet.debit(db.with_hook(hook), user, 10, "spend", "gen-1")
    assert landed and landed[0].balance == 10
    assert (result.balance, result.entry.amount, result.replayed) == (0, -10, False)
    assert (await wallet.get_balance(db, user)).balance == 0
    assert (await wallet.verify_ledger(db)).ok
