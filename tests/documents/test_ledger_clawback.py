"""Clawback of refunded or reversed purchases."""

from __future__ import annotations

import asyncio

import pytest
from bson import ObjectId

from documents import wallet
from documents.wallet import IdempotencyKeyMismatch, InsufficientPoints, LedgerError
from tests.support.barrier import Barrier


async def spent_purchase(db, make_user, bought: int, spent: int):
    """A user who bought `bought` points and spent `spent` of them; returns (user, buy entry)."""
    user = await make_user()
    buy = await wallet.credit(db, user, bought, "buy", "rustore:order-1", reference="order-1")
    if spent:
        await wallet.debit(db, user, spent, "spend", "gen-1")
    return user, buy.entry


async def test_clawback_of_a_fully_spent_purchase_floors_at_zero_and_records_the_shortfall(
        db, make_user):
    user, buy = await spent_purchase(db, make_user, 100, 100)
    result = await wallet.clawback(db, user, 100, "rustore:refund-1", corrects=buy.id,
                                   reference="order-1")
    entry = result.entry
    assert (entry.type, entry.amount, entry.balance_after, result.balance) == ("clawback", 0, 0, 0)
    assert entry.meta == {"requested": 100, "shortfall": 100, "corrects": buy.id}
    assert (await wallet.get_balance(db, user)).balance == 0
    assert (await wallet.verify_ledger(db)).ok


async def test_clawback_of_a_partly_spent_purchase_takes_what_is_left(db, make_user):
    user, buy = await spent_purchase(db, make_user, 100, 60)
    result = await wallet.clawback(db, user, 100, "refund-1", corrects=buy.id)
    assert (result.entry.amount, result.balance) == (-40, 0)
    assert result.entry.meta["shortfall"] == 60


async def test_clawback_of_an_unspent_purchase_takes_it_all(db, make_user):
    user, buy = await spent_purchase(db, make_user, 100, 0)
    result = await wallet.clawback(db, user, 100, "refund-1", corrects=buy.id)
    assert (result.entry.amount, result.balance, result.entry.meta["shortfall"]) == (-100, 0, 0)


async def test_clawback_with_allow_negative_goes_negative_and_the_audit_accepts_it(db, make_user):
    user, buy = await spent_purchase(db, make_user, 100, 60)
    result = await wallet.clawback(db, user, 100, "refund-1", corrects=buy.id,
                                   allow_negative=True)
    assert (result.entry.amount, result.balance) == (-100, -60)
    assert result.entry.meta["allow_negative"] is True and result.entry.meta["shortfall"] == 0
    with pytest.raises(InsufficientPoints) as caught:
        await wallet.debit(db, user, 1, "spend", "gen-2")
    assert caught.value.balance == -60
    # A later default clawback takes nothing from a negative wallet.
    again = await wallet.clawback(db, user, 5, "refund-2")
    assert (again.entry.amount, again.balance, again.entry.meta["shortfall"]) == (0, -60, 5)
    assert (await wallet.credit(db, user, 100, "buy", "order-2")).balance == 40
    assert (await wallet.verify_ledger(db)).ok


async def test_clawback_replay_is_idempotent(db, make_user):
    user, buy = await spent_purchase(db, make_user, 100, 30)
    first = await wallet.clawback(db, user, 100, "refund-1", corrects=buy.id)
    await wallet.credit(db, user, 50, "buy", "order-2")
    again = await wallet.clawback(db, user, 100, "refund-1", corrects=buy.id)
    assert again.replayed and again.entry == first.entry and again.balance == 0
    assert (await wallet.get_balance(db, user)).balance == 50
    with pytest.raises(IdempotencyKeyMismatch):
        await wallet.clawback(db, user, 90, "refund-1", corrects=buy.id)
    with pytest.raises(IdempotencyKeyMismatch):
        await wallet.clawback(db, user, 100, "refund-1")


async def test_concurrent_identical_clawbacks_apply_once(db, make_user):
    user, buy = await spent_purchase(db, make_user, 100, 30)
    racing = db.with_hook(barrier := Barrier(10))  # all ten sized on the same balance, at the update at once
    results = await asyncio.gather(*(wallet.clawback(racing, user, 100, "refund-1", corrects=buy.id)
                                     for _ in range(10)))
    assert barrier.met
    assert len({r.entry for r in results}) == 1 and sum(not r.replayed for r in results) == 1
    assert (await wallet.get_balance(db, user)).balance == 0


async def test_clawback_raced_with_spends_never_goes_negative(db, make_user):
    user, buy = await spent_purchase(db, make_user, 100, 0)
    racing = db.with_hook(barrier := Barrier(31))  # the clawback and all 30 spends at the update at once
    calls = [wallet.debit(racing, user, 3, "spend", f"gen-{i}") for i in range(30)]
    calls.insert(15, wallet.clawback(racing, user, 60, "refund-1", corrects=buy.id))
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert barrier.met
    claw = results[15]
    spent = 3 * sum(isinstance(r, wallet.LedgerResult) for r in results[:15] + results[16:])
    balance = (await wallet.get_balance(db, user)).balance
    assert balance >= 0
    assert balance == 100 - spent + claw.entry.amount
    assert -claw.entry.amount + claw.entry.meta["shortfall"] == 60
    assert (await wallet.verify_ledger(db)).ok


async def test_clawback_must_correct_an_entry_of_the_same_user(db, make_user):
    user, _ = await spent_purchase(db, make_user, 10, 0)
    other, other_buy = await spent_purchase(db, make_user, 10, 0)
    for corrects in (ObjectId(), other_buy.id):
        with pytest.raises(LedgerError):
            await wallet.clawback(db, user, 10, "refund-1", corrects=corrects)
    assert (await wallet.get_balance(db, user)).balance == 10


async def test_a_clawback_whose_balance_keeps_changing_gives_up_with_a_retryable_error(db, raw_db, make_user,
                                                                                       monkeypatch):
    # Every attempt's guard (the balance it sized itself on) is beaten by another write: after
    # MAX_ATTEMPTS the ledger reports contention and writes nothing, rather than loop or guess.
    from documents.wallet import apply as ledger_apply
    monkeypatch.setattr(ledger_apply, "MAX_ATTEMPTS", 3)
    user, _ = await spent_purchase(db, make_user, 10, 0)
    moved = {"n": 0}

    async def another_writer() -> None:
        moved["n"] += 1
        await raw_db.users.update_one({"_id": user}, {"$inc": {"points.balance": 1}})

    def hook(collection: str, method: str):
        return another_writer() if (collection, method) == ("users", "find_one_and_update") else None

    with pytest.raises(LedgerError, match="contention: could not settle key 'refund-1'"):
        await wallet.clawback(db.with_hook(hook), user, 5, "refund-1")
    assert moved["n"] == 3  # one beaten attempt each
    assert await wallet.find_entry(db, user, "refund-1") is None
