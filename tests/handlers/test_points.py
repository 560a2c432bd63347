"""Points over HTTP: balance, idempotent spends, history paging, and concurrent spends that never overdraw."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from documents import wallet
from tests.handlers.test_conventions import assert_error_shape
from tests.support.barrier import Barrier, HookedClient


async def funded_user(service, api, points: int = 0) -> dict:
    """Register over HTTP and grant `points` through the ledger; returns the token pair."""
    user = await api.register()
    if points:
        await wallet.credit(service.ctx.db, user["userId"], points, "admin_grant", f"test-grant:{user['userId']}")
    return user


async def spend(api, user: dict, amount: Any, key: str | None, **body: Any):
    """POST /api/points/spend with an optional Idempotency-Key."""
    headers = {"Idempotency-Key": key} if key is not None else {}
    return await api.post("/api/points/spend", {"amount": amount, **body}, token=user["accessToken"], headers=headers)


async def balance_of(api, user: dict) -> int:
    """The balance the API reports."""
    resp = await api.get("/api/points/balance", token=user["accessToken"])
    assert resp.status == 200, resp.text
    return resp.json["balance"]


async def assert_ledger_clean(service) -> None:
    """The audit recomputes every wallet from its entries and finds no drift."""
    audit = await wallet.verify_ledger(service.ctx.db)
    assert audit.ok, audit.drift


async def test_balance_has_balance_and_updated_at(api, service):
    user = await funded_user(service, api, 7)
    resp = await api.get("/api/points/balance", token=user["accessToken"])
    assert resp.status == 200
    assert set(resp.json) == {"balance", "updatedAt"}
    assert resp.json["balance"] == 7 and resp.json["updatedAt"].endswith("Z")
    await assert_ledger_clean(service)


async def test_points_endpoints_need_a_token(api):
    assert_error_shape(await api.get("/api/points/balance"), 401, "missing_token")
    assert_error_shape(await api.post("/api/points/spend", {"amount": 1}), 401, "missing_token")


async def test_spend_returns_balance_and_the_transaction(api, service):
    user = await funded_user(service, api, 10)
    resp = await spend(api, user, 4, "order-1", reason="Sticker pack")
    assert resp.status == 200, resp.text
    tx = resp.json["transaction"]
    assert resp.json["balance"] == 6
    assert set(tx) == {"id", "type", "amount", "balanceAfter", "reference", "createdAt"}
    assert (tx["type"], tx["amount"], tx["balanceAfter"], tx["reference"]) == ("spend", -4, 6, "Sticker pack")
    assert await balance_of(api, user) == 6
    await assert_ledger_clean(service)


async def test_replayed_key_returns_the_original_answer_and_charges_once(api, service):
    user = await funded_user(service, api, 10)
    first = await spend(api, user, 3, "same-key")
    await spend(api, user, 2, "another-key")
    again = await spend(api, user, 3, "same-key")
    assert again.status == 200 and again.json == first.json
    assert again.json["balance"] == 7  # as first answered, not the current 5
    assert await balance_of(api, user) == 5
    await assert_ledger_clean(service)


async def test_same_key_with_a_different_body_is_422(api, service):
    user = await funded_user(service, api, 10)
    assert (await spend(api, user, 3, "k1", reason="a")).status == 200
    assert_error_shape(await spend(api, user, 4, "k1", reason="a"), 422, "idempotency_key_mismatch")
    assert_error_shape(await spend(api, user, 3, "k1", reason="b"), 422, "idempotency_key_mismatch")
    assert await balance_of(api, user) == 7
    await assert_ledger_clean(service)


async def test_idempotency_key_is_required_and_checked(api, service):
    user = await funded_user(service, api, 10)
    assert_error_shape(await spend(api, user, 1, None), 400, "idempotency_key_required")
    assert_error_shape(await spend(api, user, 1, "x" * 256), 400, "invalid_idempotency_key")
    assert_error_shape(await spend(api, user, 1, "tab\tinside"), 400, "invalid_idempotency_key")
    assert (await spend(api, user, 1, "k" * 255)).status == 200  # longest key still fits the ledger
    assert await balance_of(api, user) == 9
    await assert_ledger_clean(service)


async def test_insufficient_points_is_402_with_balance_and_leaves_the_key_usable(api, service):
    user = await funded_user(service, api, 2)
    resp = await spend(api, user, 5, "big")
    assert_error_shape(resp, 402, "insufficient_points")
    assert resp.json["details"] == {"balance": 2, "required": 5}
    await wallet.credit(service.ctx.db, user["userId"], 3, "admin_grant", "top-up")
    assert (await spend(api, user, 5, "big")).json["balance"] == 0
    await assert_ledger_clean(service)


async def test_amount_is_a_strict_integer_in_range(api, service):
    user = await funded_user(service, api, 200_000)
    for amount in (1.5, "5", 0, -1, 100_001, True, None):
        resp = await spend(api, user, amount, f"bad-{amount!r}")
        assert_error_shape(resp, 400, "validation_failed")
        assert "amount" in resp.json["details"]["fields"]
    assert_error_shape(await spend(api, user, 1, "long-reason", reason="r" * 201), 400, "validation_failed")
    assert_error_shape(await spend(api, user, 1, "extra", note="x"), 400, "validation_failed")
    assert (await spend(api, user, 100_000, "max")).status == 200
    await assert_ledger_clean(service)


async def history(api, user: dict, **params: Any):
    return await api.get("/api/points/history", token=user["accessToken"], params=params)


async def test_history_pages_newest_first_and_stays_stable_when_entries_land(api, service):
    user = await funded_user(service, api, 100)
    for i in range(1, 6):
        await spend(api, user, i, f"s{i}")
    first = await history(api, user, limit=3)
    assert first.status == 200
    assert [item["amount"] for item in first.json["items"]] == [-5, -4, -3]
    assert set(first.json["items"][0]) == {"id", "type", "amount", "balanceAfter", "reference", "createdAt"}
    await spend(api, user, 10, "landed-between-pages")
    second = await history(api, user, limit=3, cursor=first.json["nextCursor"])
    assert [item["amount"] for item in second.json["items"]] == [-2, -1, 100]
    assert second.json["nextCursor"] is None
    newest = await history(api, user)
    assert newest.json["items"][0]["amount"] == -10 and newest.json["nextCursor"] is None
    await assert_ledger_clean(service)


async def test_history_filters_by_type_and_rejects_bad_arguments(api, service):
    user = await funded_user(service, api, 10)
    await spend(api, user, 1, "a")
    await spend(api, user, 2, "b")
    spends = await history(api, user, type="spend", limit=1)
    assert [item["amount"] for item in spends.json["items"]] == [-2]
    rest = await history(api, user, type="spend", limit=1, cursor=spends.json["nextCursor"])
    assert [item["amount"] for item in rest.json["items"]] == [-1] and rest.json["nextCursor"] is None
    grants = await history(api, user, type="admin_grant")
    assert [item["type"] for item in grants.json["items"]] == ["admin_grant"]
    assert_error_shape(await history(api, user, type="gift"), 400, "validation_failed")
    for limit in ("0", "101", "1.5", "-1", "ten"):
        assert_error_shape(await history(api, user, limit=limit), 400, "validation_failed")
    foreign = base64.urlsafe_b64encode(b"gen:5").decode()
    for cursor in ("not a cursor", "!!!", foreign, base64.urlsafe_b64encode(b"seq:-3").decode()):
        assert_error_shape(await history(api, user, cursor=cursor), 400, "invalid_cursor")
    await assert_ledger_clean(service)


async def test_profile_balance_follows_the_wallet(api, service):
    user = await funded_user(service, api, 12)
    await spend(api, user, 5, "p1")
    profile = await api.get("/api/user/profile", token=user["accessToken"])
    assert profile.json["points"] == {"balance": 7}
    await assert_ledger_clean(service)


async def test_concurrent_spends_never_overdraw(start_server):
    mongo = HookedClient()
    service, api = await start_server(mongo=mongo)
    user = await funded_user(service, api, 100)
    mongo.hook = barrier = Barrier(50)  # 50 spends (half the client's connections) at the ledger's update at once
    results = await asyncio.gather(*(spend(api, user, 1, f"c-{i}") for i in range(500)))
    assert barrier.met
    statuses = [r.status for r in results]
    assert statuses.count(200) == 100 and statuses.count(402) == 400
    assert await balance_of(api, user) == 0
    entries = await wallet.list_entries(service.ctx.db, user["userId"], limit=1000, type="spend")
    assert len(entries) == 100
    assert len({r.json["transaction"]["id"] for r in results if r.status == 200}) == 100
    await assert_ledger_clean(service)


async def test_concurrent_replays_of_one_key_charge_once(start_server):
    mongo = HookedClient()
    service, api = await start_server(mongo=mongo)
    user = await funded_user(service, api, 10)
    # The first two requests past their pre-check wait for each other right before the
    # ledger's update: only its idempotency filter can stop the second charge.
    mongo.hook = barrier = Barrier(2)
    results = await asyncio.gather(*(spend(api, user, 3, "one-key") for _ in range(20)))
    assert barrier.met  # two requests really were in flight at the write at once
    assert {r.status for r in results} == {200}
    assert len({r.json["transaction"]["id"] for r in results}) == 1 and {r.json["balance"] for r in results} == {7}
    assert await balance_of(api, user) == 7
    await assert_ledger_clean(service)
