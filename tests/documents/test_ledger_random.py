"""Seeded random mixes of ledger ops keep every invariant."""

from __future__ import annotations

import asyncio
import random

from documents import wallet
from documents.wallet import InsufficientPoints, LedgerResult
from tests.support.barrier import Barrier


async def check_invariants(db, user) -> None:
    """balance == sum(entries) == last balance_after; seqs 1..n; audit clean."""
    docs = await db.transactions.find({"user_id": user}).sort("seq", 1).limit(10_000) \
        .to_list(10_000)
    balance = (await wallet.get_balance(db, user)).balance
    assert [d["seq"] for d in docs] == list(range(1, len(docs) + 1))
    assert balance == sum(d["amount"] for d in docs) == (docs[-1]["balance_after"] if docs else 0)
    assert all(d["balance_after"] >= 0 for d in docs)


async def test_sequential_random_ops_match_a_simple_model(db, make_user):
    rng = random.Random(20260101)
    user = await make_user()
    model, used = 0, {}
    for step in range(150):
        roll = rng.random()
        if roll < 0.1 and used:  # replay an earlier key with its original arguments
            key = rng.choice(sorted(used))
            kind, amount = used[key]
            if kind == "clawback":
                result = await wallet.clawback(db, user, amount, key)
            else:
                call = wallet.credit if kind == "buy" else wallet.debit
                result = await call(db, user, amount, kind, key)
            assert result.replayed and result.entry.idempotency_key == key
            continue
        key, amount = f"op-{step}", rng.randint(1, 40)
        if roll < 0.5:
            result = await wallet.credit(db, user, amount, "buy", key)
            model += amount
        elif roll < 0.9:
            try:
                result = await wallet.debit(db, user, amount, "spend", key)
            except InsufficientPoints as exc:
                assert exc.balance == model < amount
                continue
            model -= amount
        else:
            result = await wallet.clawback(db, user, amount, key)
            model -= min(model, amount)
            used[key] = ("clawback", amount)
            continue
        used[key] = ("buy" if roll < 0.5 else "spend", amount)
        assert result.balance == model and not result.replayed
    assert (await wallet.get_balance(db, user)).balance == model
    await check_invariants(db, user)
    assert (await wallet.verify_ledger(db)).ok


async def test_concurrent_random_ops_with_retries_keep_invariants(db, make_user):
    rng = random.Random(7)
    users = [await make_user(rng.randint(0, 50)) for _ in range(3)]
    for round_ in range(6):
        racing = db.with_hook(barrier := Barrier(10))  # ten of the round's ops at their update at once
        calls = []
        for i in range(40):
            user, key = rng.choice(users), f"r{round_}-{i}"
            amount = rng.randint(1, 15)
            kind = rng.choice(["credit", "debit", "debit", "clawback"])
            for _ in range(rng.choice([1, 1, 2, 3])):  # duplicate deliveries
                if kind == "credit":
                    calls.append(wallet.credit(racing, user, amount, "buy", key))
                elif kind == "debit":
                    calls.append(wallet.debit(racing, user, amount, "spend", key))
                else:
                    calls.append(wallet.clawback(racing, user, amount, key))
        rng.shuffle(calls)
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert barrier.met
        assert all(isinstance(r, (LedgerResult, InsufficientPoints)) for r in results), results
        for user in users:
            await check_invariants(db, user)
        audit = await wallet.verify_ledger(db)
        assert audit.ok, audit.drift
