"""Idempotency, replays, validation and wallet edge cases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from bson import ObjectId
from mongomock_motor import AsyncMongoMockClient
from prometheus_client import REGISTRY

from documents.wallet import ledger as ledger
from documents.wallet.ledger import IdempotencyKeyMismatch, InsufficientPoints, InvalidAmount, LedgerError, UserNotFound
from tests.support.yielding import YieldingDatabase


async def test_replay_returns_the_original_entry_and_balance_after_later_ops(db, make_user):
    user = await make_user()
    first = await ledger.credit(db, user, 100, "buy", "order-1", reference="order-1")
    await ledger.debit(db, user, 30, "spend", "gen-1")
    again = await ledger.credit(db, user, 100, "buy", "order-1", reference="order-1")
    assert again.replayed and not first.replayed
    assert again.entry == first.entry and again.balance == first.balance == 100
    assert (await ledger.get_balance(db, user)).balance == 70


async def test_same_key_with_a_different_amount_raises_mismatch(db, make_user):
    user = await make_user()
    await ledger.credit(db, user, 100, "buy", "order-1")
    with pytest.raises(IdempotencyKeyMismatch) as caught:
        await ledger.credit(db, user, 101, "buy", "order-1")
    assert caught.value.entry.amount == 100
    assert (await ledger.get_balance(db, user)).balance == 100


async def test_same_key_with_a_different_type_raises_mismatch(db, make_user):
    user = await make_user(50)
    await ledger.debit(db, user, 5, "spend", "k")
    with pytest.raises(IdempotencyKeyMismatch):
        await ledger.debit(db, user, 5, "admin_debit", "k")
    with pytest.raises(IdempotencyKeyMismatch):
        await ledger.credit(db, user, 5, "refund", "k")


async def test_request_hash_is_stored_and_a_different_one_raises_mismatch(db, make_user):
    user = await make_user(50)
    first = await ledger.debit(db, user, 5, "spend", "k", request_hash="h1")
    assert first.entry.meta["request_hash"] == "h1"
    assert (await ledger.debit(db, user, 5, "spend", "k", request_hash="h1")).replayed
    assert (await ledger.debit(db, user, 5, "spend", "k")).replayed
    with pytest.raises(IdempotencyKeyMismatch):
        await ledger.debit(db, user, 5, "spend", "k", request_hash="h2")


async def test_keys_are_scoped_per_user(db, make_user):
    ann, bob = await make_user(), await make_user()
    await ledger.credit(db, ann, 10, "buy", "order-1")
    result = await ledger.credit(db, bob, 20, "buy", "order-1")
    assert not result.replayed and result.balance == 20


async def test_insufficient_points_leaves_no_trace_and_balance_never_goes_negative(db, make_user):
    user = await make_user(5)
    with pytest.raises(InsufficientPoints) as caught:
        await ledger.debit(db, user, 6, "spend", "gen-1")
    assert caught.value.balance == 5
    assert await ledger.find_entry(db, user, "gen-1") is None
    assert (await ledger.get_balance(db, user)).balance == 5
    # The failed key is not burnt: it succeeds once the points are there.
    await ledger.credit(db, user, 1, "buy", "order-1")
    assert (await ledger.debit(db, user, 6, "spend", "gen-1")).balance == 0


@pytest.mark.parametrize("amount", [0, -1, True, 1.0, 10**9 + 1, "5", None])
async def test_invalid_amounts_are_rejected(db, make_user, amount):
    user = await make_user(10)
    with pytest.raises(InvalidAmount):
        await ledger.credit(db, user, amount, "buy", "k")
    with pytest.raises(InvalidAmount):
        await ledger.debit(db, user, amount, "spend", "k")
    with pytest.raises(InvalidAmount):
        await ledger.clawback(db, user, amount, "k")
    assert await db.transactions.count_documents({"user_id": user}) == 1


async def test_max_amount_is_accepted(db, make_user):
    user = await make_user()
    assert (await ledger.credit(db, user, 10**9, "admin_grant", "k")).balance == 10**9


async def test_idempotency_keys_of_up_to_max_key_length_characters_are_accepted(db, make_user):
    user = await make_user()
    longest = "k" * ledger.MAX_KEY_LENGTH
    assert (await ledger.credit(db, user, 1, "buy", longest)).entry.idempotency_key == longest
    with pytest.raises(ValueError):
        await ledger.credit(db, user, 1, "buy", longest + "k")
    assert (await ledger.get_balance(db, user)).balance == 1


async def test_wrong_types_keys_and_reserved_meta_are_rejected(db, make_user):
    user = await make_user(10)
    with pytest.raises(ValueError):
        await ledger.credit(db, user, 1, "spend", "k")
    with pytest.raises(ValueError):
        await ledger.debit(db, user, 1, "buy", "k")
    with pytest.raises(ValueError):
        await ledger.credit(db, user, 1, "buy", "")
    with pytest.raises(ValueError):
        await ledger.credit(db, user, 1, "buy", "k", meta={"allow_negative": True})


async def test_unknown_user_raises_user_not_found_and_creates_nothing(db):
    ghost = ObjectId()
    for call in (ledger.credit(db, ghost, 1, "buy", "k"),
                 ledger.debit(db, ghost, 1, "spend", "k"),
                 ledger.clawback(db, ghost, 1, "k"),
                 ledger.clawback(db, ghost, 1, "k2", allow_negative=True),
                 ledger.get_balance(db, ghost)):
        with pytest.raises(UserNotFound):
            await call
    assert await db.users.count_documents({}) == 0
    assert await db.transactions.count_documents({}) == 0
    with pytest.raises(UserNotFound):
        await ledger.get_balance(db, "not-an-id")


async def test_a_user_id_that_is_no_object_id_is_user_not_found_for_reads_and_corrections_too(db, make_user):
    # Refused before any query: never answered as the (empty) history of nobody.
    user = await make_user()
    entry = (await ledger.credit(db, user, 5, "buy", "k")).entry
    for call in (ledger.list_entries(db, "not-an-id", limit=10),
                 ledger.find_entry(db, "not-an-id", "k"),
                 ledger.clawback(db, "not-an-id", 1, "refund-k", corrects=entry.id),
                 ledger.credit(db, 42, 1, "refund", "refund-k", corrects=entry.id)):
        with pytest.raises(UserNotFound):
            await call
    assert await db.transactions.count_documents({}) == 1


async def test_the_points_metric_counts_each_applied_op_once_and_never_a_replay(db, make_user):
    user = await make_user()

    def moved(type: str) -> float:
        return REGISTRY.get_sample_value("points_total", {"type": type}) or 0.0

    before = moved("buy"), moved("spend"), moved("clawback")
    for when in ("applied", "replayed"):
        await ledger.credit(db, user, 30, "buy", "order-1")
        await ledger.debit(db, user, 12, "spend", "gen-1")
        await ledger.clawback(db, user, 5, "refund-1")
        assert (moved("buy") - before[0], moved("spend") - before[1], moved("clawback") - before[2]) == (30, 12, 5), when


async def test_user_without_a_wallet_is_treated_as_empty(db, make_user):
    user = await make_user(wallet=False)
    assert (await ledger.get_balance(db, user)) == ledger.Wallet(0, None)
    with pytest.raises(InsufficientPoints) as caught:
        await ledger.debit(db, user, 1, "spend", "gen-1")
    assert caught.value.balance == 0
    result = await ledger.credit(db, str(user), 40, "buy", "order-1")
    assert (result.balance, result.entry.seq) == (40, 1)
    assert (await ledger.verify_ledger(db)).ok


async def test_clawback_on_a_user_without_a_wallet_records_the_full_shortfall(db, make_user):
    user = await make_user(wallet=False)
    result = await ledger.clawback(db, user, 10, "refund-1")
    assert result.entry.amount == 0 and result.entry.meta["shortfall"] == 10
    assert (await ledger.verify_ledger(db)).ok


async def test_fresh_result_equals_its_replay_on_a_tz_aware_client(make_user):
    db = YieldingDatabase(AsyncMongoMockClient(tz_aware=True)["tz"])
    await ledger.ensure_indexes(db)
    user = ObjectId()
    await db.users.insert_one({"_id": user, "points": ledger.new_wallet(datetime.now(UTC))})
    now = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    first = await ledger.credit(db, user, 3, "buy", "k", meta={"sku": "p3"}, now=now)
    again = await ledger.credit(db, user, 3, "buy", "k")
    assert first.entry == again.entry
    assert first.entry.created_at == datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)


async def test_meta_and_reference_are_stored_as_given(db, make_user):
    user = await make_user()
    result = await ledger.credit(db, user, 3, "buy", "k", reference="inv-9", meta={"sku": "p3"})
    stored = await db.transactions.find_one({"_id": result.entry.id})
    assert stored["reference"] == "inv-9" and stored["meta"] == {"sku": "p3"}
    assert stored["balance_after"] == 3 and stored["seq"] == 1


def test_exceptions_share_the_ledger_base_class():
    for exc in (InsufficientPoints, IdempotencyKeyMismatch, UserNotFound, InvalidAmount):
        assert issubclass(exc, LedgerError)


def test_recent_key_hashes_keep_their_stored_format():
    # `points.recent` holds these hashes across deploys: a changed size or encoding would let a
    # retry after an upgrade miss the key an older process applied.
    from documents.wallet.apply import key_hash
    assert key_hash("rustore:order-1") == key_hash("rustore:order-1") != key_hash("rustore:order-2")
    assert len(key_hash("rustore:order-1")) == 16 and key_hash("") == "uOHdo6wKo4IK0pkL"


async def test_every_applied_op_stamps_the_wallet(db, make_user):
    user = await make_user()
    at = datetime(2026, 2, 3, 4, 5, tzinfo=UTC)
    await ledger.credit(db, user, 5, "buy", "order-1", now=at)
    points = (await db.users.find_one({"_id": user}))["points"]
    assert points["updated_at"].replace(tzinfo=UTC) == at
