"""Forced interleavings: a caller parked between its pre-check and its update."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from documents.wallet import apply as ledger_apply
from documents.wallet import ledger as ledger


class Parked:
    """Hook that parks the first users.find_one_and_update (the apply) until released."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.release = asyncio.Event()
        self.done = False

    def __call__(self, collection: str, method: str) -> Any:
        if (collection, method) == ("users", "find_one_and_update") and not self.done:
            self.done = True
            self.reached.set()
            return self.release.wait()
        return None

    def let_go(self, task: asyncio.Future) -> None:
        """Release the parked caller, asserting it really was held there until now."""
        assert not task.done(), "the parked caller ran on instead of waiting at its park point"
        self.release.set()


async def run_parked(db, call) -> tuple[asyncio.Task, Parked]:
    """Start `call(slow_db)` and wait until it is parked right before its apply."""
    parked = Parked()
    task = asyncio.ensure_future(call(db.with_hook(parked)))
    await asyncio.wait_for(parked.reached.wait(), 5)
    return task, parked


async def test_key_applied_and_flushed_while_a_duplicate_caller_was_parked_is_not_reapplied(
        db, make_user):
    # The slow caller's pre-check missed; by the time it updates, the fast one
    # has applied AND flushed (outbox empty): only `points.recent` stops it.
    user = await make_user()
    slow, parked = await run_parked(
        db, lambda d: ledger.credit(d, user, 5, "buy", "order-1"))
    fast = await ledger.credit(db, user, 5, "buy", "order-1")
    assert not fast.replayed and (await ledger.get_balance(db, user)).balance == 5
    parked.let_go(slow)
    result = await slow
    assert result.replayed and result.entry == fast.entry
    assert (await ledger.get_balance(db, user)).balance == 5
    assert (await ledger.verify_ledger(db)).ok


async def test_key_in_a_crashed_outbox_stops_a_parked_duplicate_and_is_flushed(db, make_user):
    user = await make_user()
    slow, parked = await run_parked(
        db, lambda d: ledger.credit(d, user, 5, "buy", "order-1"))

    crashes = {"n": 0}

    def crash(collection: str, method: str) -> None:
        if (collection, method) == ("transactions", "insert_one"):
            crashes["n"] += 1
            raise RuntimeError("process died")

    await crashed(ledger.credit(db.with_hook(crash), user, 5, "buy", "order-1"))
    assert crashes["n"] == 1  # the fast caller really died with its key in the outbox
    assert len((await db.users.find_one({"_id": user}))["points"]["outbox"]) == 1
    parked.let_go(slow)
    result = await slow
    assert result.replayed and result.balance == 5 and result.entry.seq == 1
    assert (await ledger.verify_ledger(db)).ok


async def test_debit_parked_while_the_balance_drains_raises_insufficient_points(db, make_user):
    user = await make_user(10)
    slow, parked = await run_parked(db, lambda d: ledger.debit(d, user, 8, "spend", "gen-1"))
    await ledger.debit(db, user, 5, "spend", "gen-2")
    parked.let_go(slow)
    try:
        await slow
        raise AssertionError("expected InsufficientPoints")
    except ledger.InsufficientPoints as exc:
        assert exc.balance == 5


async def test_clawback_parked_while_the_balance_changes_retries_on_the_new_balance(
        db, make_user):
    user = await make_user(10)
    # The slow clawback sized itself on 10 before parking; its guard sees 4.
    slow, parked = await run_parked(db, lambda d: ledger.clawback(d, user, 10, "refund-1"))
    await ledger.debit(db, user, 6, "spend", "gen-1")
    parked.let_go(slow)
    result = await slow
    assert (result.entry.amount, result.balance, result.entry.meta["shortfall"]) == (-4, 0, 6)
    assert (await ledger.verify_ledger(db)).ok


async def test_beyond_recent_max_a_double_apply_is_recorded_and_the_ledger_still_balances(
        db, make_user, monkeypatch, caplog):
    # The documented limit: more than RECENT_MAX ops on one user while a caller
    # is parked between pre-check and update.  The twin is kept, not lost.
    monkeypatch.setattr(ledger_apply, "RECENT_MAX", 2)
    user = await make_user()
    slow, parked = await run_parked(
        db, lambda d: ledger.credit(d, user, 5, "buy", "order-1"))
    first = await ledger.credit(db, user, 5, "buy", "order-1")
    for i in range(3):
        await ledger.credit(db, user, 1, "buy", f"other-{i}")
    parked.let_go(slow)
    with caplog.at_level(logging.ERROR, logger="documents.wallet.outbox"):
        await slow
    assert "applied twice" in caplog.text
    points = (await db.users.find_one({"_id": user}))["points"]
    assert points["outbox"] == [] and "pending_since" not in points  # the twin was written out, not left
    twin = await db.transactions.find_one({"meta.duplicate_of": first.entry.id})
    assert twin["idempotency_key"].startswith("order-1#dup:") and twin["amount"] == 5
    assert (await ledger.get_balance(db, user)).balance == 13
    assert (await ledger.verify_ledger(db)).ok


def always_crash_inserts(collection: str, method: str) -> None:
    """Hook: every entry insert dies, so outboxes are never written."""
    if (collection, method) == ("transactions", "insert_one"):
        raise RuntimeError("process died")


async def crashed(call) -> None:
    """Await a call that must die with the simulated crash (fails if it does not)."""
    with pytest.raises(RuntimeError, match="process died"):
        await call


async def test_key_still_in_the_outbox_but_aged_out_of_recent_is_not_reapplied(
        db, make_user, monkeypatch):
    # Every flush keeps failing, so the outbox outlives `recent`: the outbox
    # guard is what stops the retried key.
    monkeypatch.setattr(ledger_apply, "RECENT_MAX", 2)
    user = await make_user()
    broken = db.with_hook(always_crash_inserts)
    await crashed(ledger.credit(broken, user, 5, "buy", "order-1"))
    for i in range(3):
        await crashed(ledger.credit(broken, user, 1, "buy", f"other-{i}"))
    points = (await db.users.find_one({"_id": user}))["points"]
    # The premise: order-1 is still in the outbox but no longer in `recent`.
    assert "order-1" in [op["idempotency_key"] for op in points["outbox"]]
    assert ledger_apply.key_hash("order-1") not in [r["k"] for r in points["recent"]]
    retry = await ledger.credit(db, user, 5, "buy", "order-1")
    assert retry.replayed and retry.entry.seq == 1
    assert (await ledger.get_balance(db, user)).balance == 8
    assert (await ledger.verify_ledger(db)).ok


async def test_a_crash_mid_flush_leaves_a_contiguous_prefix_of_entries(db, make_user):
    user = await make_user()
    broken = db.with_hook(always_crash_inserts)
    for i in range(4):
        await crashed(ledger.credit(broken, user, i + 1, "buy", f"order-{i}"))
    inserts = {"n": 0}

    def die_on_second_insert(collection: str, method: str) -> None:
        if (collection, method) == ("transactions", "insert_one"):
            inserts["n"] += 1
            if inserts["n"] == 2:
                raise RuntimeError("process died")

    await crashed(ledger.flush_user(db.with_hook(die_on_second_insert), user))
    seqs = [d["seq"] async for d in db.transactions.find({"user_id": user}).sort("seq", 1)]
    assert seqs == [1]
    await ledger.repair_pending(db)
    assert (await ledger.verify_ledger(db)).ok


async def test_pending_flag_survives_an_op_that_lands_while_a_flusher_clears_it(db, make_user):
    user = await make_user()
    parked = Parked()

    def park_before_clearing(collection: str, method: str) -> Any:
        if (collection, method) == ("users", "update_one") and not parked.done:
            parked.done = True
            parked.reached.set()
            return parked.release.wait()
        return None

    flusher = asyncio.ensure_future(
        ledger.credit(db.with_hook(park_before_clearing), user, 1, "buy", "order-1"))
    await asyncio.wait_for(parked.reached.wait(), 5)  # outbox is empty now, flag about to be cleared
    await crashed(ledger.credit(db.with_hook(always_crash_inserts), user, 2, "buy", "order-2"))
    parked.let_go(flusher)
    await flusher
    points = (await db.users.find_one({"_id": user}))["points"]
    assert len(points["outbox"]) == 1 and "pending_since" in points
    assert await ledger.repair_pending(db) == 1
    assert (await ledger.verify_ledger(db)).ok
