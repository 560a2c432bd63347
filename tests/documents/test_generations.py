"""The generations state machine: one generation per key, conditional moves, exactly-once charge and refund."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from documents import wallet
from documents.generations import store as gens
from tests.support.barrier import Barrier

REQUEST = {"occasion": "день рождения", "recipient_name": "Анна", "tone": None, "language": "ru", "details": None}
RESULT = {"text": "С днём рождения!", "title": "С днём рождения!", "model": "m", "image": False}


@pytest.fixture
async def gdb(db):
    """The yielding test database with the generations indexes."""
    for name, models in gens.INDEXES.items():
        await db[name].create_indexes(models)
    return db


def now() -> datetime:
    return datetime.now(UTC)


async def start(db, user, key: str = "k1", request: dict = REQUEST, cost: int = 1):
    return await gens.start_generation(db, user, key, "greeting", request, cost, "offline", now())


async def charged(db, user, key: str = "k1"):
    """A pending generation whose cost was taken, as the handler leaves it right before the provider call."""
    gen, _ = await start(db, user, key)
    return gen, await gens.charge(db, gen, now())


async def test_one_key_maps_to_one_generation_and_another_body_is_refused(gdb, make_user):
    user = await make_user()
    first, created = await start(gdb, user)
    again, created_again = await start(gdb, user)
    assert created and not created_again and again["_id"] == first["_id"]
    with pytest.raises(gens.GenerationKeyMismatch):
        await start(gdb, user, request={**REQUEST, "recipient_name": "Олег"})
    at_once = gdb.with_hook(barrier := Barrier(5, gens.COLLECTION, "insert_one"))  # all five insert the key at once
    racing = await asyncio.gather(*(start(at_once, user, "k2") for _ in range(5)))
    assert barrier.met
    assert sum(created for _, created in racing) == 1 and len({g["_id"] for g, _ in racing}) == 1


async def test_a_refused_charge_withdraws_the_generation_so_the_key_can_be_retried(gdb, make_user):
    user = await make_user()
    gen, _ = await start(gdb, user, cost=3)
    with pytest.raises(wallet.InsufficientPoints):
        await gens.charge(gdb, gen, now())
    assert await gdb.generations.count_documents({}) == 0
    again, created = await start(gdb, user, cost=3)
    assert created and again["_id"] != gen["_id"]


async def test_moves_happen_only_from_pending(gdb, make_user):
    user = await make_user(5)
    gen, spend = await charged(gdb, user)
    done = await gens.complete_generation(gdb, gen, RESULT, spend, now())
    assert done["status"] == gens.COMPLETED and done["spend"]["balance_after"] == 4
    assert await gens.fail_generation(gdb, gen["_id"], "timeout", True, now()) is None
    other, spend2 = await charged(gdb, user, "k2")
    failed = await gens.fail_generation(gdb, other["_id"], "timeout", True, now())
    assert failed["status"] == gens.FAILED and failed["refund_due_since"]
    # A late answer cannot resurrect a failed generation.
    assert await gens.complete_generation(gdb, other, RESULT, spend2, now()) is None
    assert (await gens.get_generation(gdb, user, other["_id"]))["status"] == gens.FAILED


async def test_refund_is_paid_once_however_many_settle_it(gdb, make_user):
    user = await make_user(5)
    gen, spend = await charged(gdb, user)
    failed = await gens.fail_generation(gdb, gen["_id"], "upstream_error", True, now())
    outcomes = await asyncio.gather(*(gens.settle_refund(gdb, failed, now()) for _ in range(5)))
    assert sum(credited for _, credited in outcomes) == 1
    settled = await gens.get_generation(gdb, user, gen["_id"])
    assert "refund_due_since" not in settled and settled["refund"]["amount"] == 1
    refund = await wallet.find_entry(gdb, user, gens.refund_key(gen["_id"]))
    assert refund.type == "refund" and refund.meta["corrects"] == spend.entry.id
    assert (await wallet.get_balance(gdb, user)).balance == 5
    assert (await wallet.verify_ledger(gdb)).ok


async def test_a_spend_left_in_the_wallet_outbox_by_a_crash_is_still_refunded(gdb, make_user):
    user = await make_user(5)
    gen, _ = await start(gdb, user)

    def crash(collection: str, method: str) -> None:
        if (collection, method) == ("transactions", "insert_one"):
            raise RuntimeError("process died")

    with pytest.raises(RuntimeError):
        await gens.charge(gdb.with_hook(crash), gen, now())
    assert await wallet.find_entry(gdb, user, gens.spend_key(gen["_id"])) is None
    failed = await gens.fail_generation(gdb, gen["_id"], "abandoned", True, now())
    _, credited = await gens.settle_refund(gdb, failed, now())
    assert credited == 1 and (await wallet.get_balance(gdb, user)).balance == 5
    assert (await wallet.verify_ledger(gdb)).ok


async def test_nothing_charged_stays_due_until_the_grace_then_settles_at_zero(gdb, make_user):
    user = await make_user(5)
    gen, _ = await start(gdb, user)
    failed = await gens.fail_generation(gdb, gen["_id"], "abandoned", True, now())
    kept, credited = await gens.settle_refund(gdb, failed, now())
    assert credited == 0 and "refund_due_since" in kept and "refund" not in kept
    later = now() + gens.NO_CHARGE_GRACE + timedelta(seconds=1)
    closed, _ = await gens.settle_refund(gdb, kept, later)
    assert closed["refund"] == {"amount": 0, "entry_id": None, "balance_after": 5}
    # A stalled spend landing after that is still given back.
    await gens.charge(gdb, gen, now())
    reopened, credited = await gens.settle_refund(gdb, closed, later)
    assert credited == 1 and reopened["refund"]["amount"] == 1
    assert (await wallet.get_balance(gdb, user)).balance == 5
    assert (await wallet.verify_ledger(gdb)).ok


async def test_repair_fails_only_stale_pending_generations_and_refunds_them_once(gdb, make_user):
    user = await make_user(5)
    stale, _ = await charged(gdb, user, "stale")
    later = now() + timedelta(minutes=5)
    fresh, _ = await gens.start_generation(gdb, user, "fresh", "greeting", REQUEST, 1, "offline", later)
    summary = await gens.repair_generations(gdb, now=later, stale_after=timedelta(minutes=2))
    assert (summary["abandoned"], summary["refunds"], summary["points_refunded"]) == (1, 1, 1)
    assert summary["abandoned_by_provider"] == {"offline": 1}
    again = await gens.repair_generations(gdb, now=later, stale_after=timedelta(minutes=2))
    assert (again["abandoned"], again["refunds"]) == (0, 0)
    assert (await gens.get_generation(gdb, user, stale["_id"]))["status"] == gens.FAILED
    assert (await gens.get_generation(gdb, user, fresh["_id"]))["status"] == gens.PENDING
    assert (await wallet.get_balance(gdb, user)).balance == 5
    assert (await wallet.verify_ledger(gdb)).ok


async def test_other_users_and_malformed_ids_are_not_found(gdb, make_user):
    owner, other = await make_user(), await make_user()
    gen, _ = await start(gdb, owner)
    assert await gens.find_generation(gdb, other, gen["_id"]) is None
    assert await gens.find_generation(gdb, owner, "nope") is None
    with pytest.raises(gens.GenerationNotFound):
        await gens.get_generation(gdb, other, str(gen["_id"]))
