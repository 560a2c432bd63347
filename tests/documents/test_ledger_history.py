"""History reads: list_entries paging, find_entry, get_balance and the API shape."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from documents.wallet import ledger as ledger


async def test_list_entries_is_newest_first_and_stable_when_entries_arrive_between_pages(
        db, make_user):
    user = await make_user()
    for i in range(10):
        await ledger.credit(db, user, i + 1, "buy", f"order-{i}")
    page1 = await ledger.list_entries(db, user, limit=4)
    assert [e.seq for e in page1] == [10, 9, 8, 7]
    for i in range(3):  # new entries must not shift or repeat older pages
        await ledger.debit(db, user, 1, "spend", f"gen-{i}")
    page2 = await ledger.list_entries(db, user, limit=4, before_seq=page1[-1].seq)
    page3 = await ledger.list_entries(db, user, limit=4, before_seq=page2[-1].seq)
    assert [e.seq for e in page2] == [6, 5, 4, 3]
    assert [e.seq for e in page3] == [2, 1]
    assert await ledger.list_entries(db, user, limit=4, before_seq=1) == []
    assert [e.seq for e in await ledger.list_entries(db, user, limit=3)] == [13, 12, 11]


async def test_list_entries_filters_by_type(db, make_user):
    user = await make_user(10)
    for i in range(3):
        await ledger.debit(db, user, 1, "spend", f"gen-{i}")
    await ledger.credit(db, user, 5, "refund", "gen-1:refund")
    spends = await ledger.list_entries(db, user, limit=10, type="spend")
    assert [(e.type, e.seq) for e in spends] == [("spend", 4), ("spend", 3), ("spend", 2)]
    assert [e.seq for e in await ledger.list_entries(db, user, limit=10, type="spend",
                                                      before_seq=4)] == [3, 2]


@pytest.mark.parametrize("limit", [0, -1, 1001, True, 2.0])
async def test_list_entries_rejects_bad_limits(db, make_user, limit):
    with pytest.raises(ValueError):
        await ledger.list_entries(db, await make_user(), limit=limit)


async def test_list_entries_is_scoped_to_the_user(db, make_user):
    ann, bob = await make_user(3), await make_user(4)
    assert [e.amount for e in await ledger.list_entries(db, ann, limit=5)] == [3]
    assert [e.amount for e in await ledger.list_entries(db, str(bob), limit=5)] == [4]


async def test_find_entry_returns_the_stored_entry(db, make_user):
    user = await make_user()
    result = await ledger.credit(db, user, 9, "buy", "order-1")
    assert await ledger.find_entry(db, user, "order-1") == result.entry
    assert await ledger.find_entry(db, user, "order-2") is None


async def test_to_api_is_camel_case_with_utc_z_timestamps(db, make_user):
    user = await make_user()
    now = datetime(2026, 5, 4, 3, 2, 1, 987654, tzinfo=UTC)
    entry = (await ledger.credit(db, user, 9, "buy", "order-1", reference="inv-1",
                                 now=now)).entry
    assert entry.to_api() == {"id": str(entry.id), "type": "buy", "amount": 9,
                              "balanceAfter": 9, "reference": "inv-1",
                              "createdAt": "2026-05-04T03:02:01.987Z"}


async def test_get_balance_reports_balance_and_last_update(db, make_user):
    user = await make_user()
    now = datetime(2026, 5, 4, 3, 2, 1, tzinfo=UTC)
    await ledger.credit(db, user, 9, "buy", "order-1", now=now)
    assert await ledger.get_balance(db, user) == ledger.Wallet(9, now)


def test_new_wallet_has_the_documented_shape():
    now = datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=UTC)
    assert ledger.new_wallet(now) == {"balance": 0, "seq": 0, "updated_at": now.replace(microsecond=123000),
                                      "recent": [], "outbox": []}


async def test_indexes_are_declared_for_transactions_and_users(db):
    info = await db.transactions.index_information()
    assert info["user_idempotency_key"]["unique"] and info["user_seq"]["unique"]
    assert "user_type_seq" in info
    assert (await db.users.index_information())["points_pending_since"]["sparse"]
    assert set(ledger.INDEXES) == {"transactions", "users"}
