"""Failed sign-in counters: all-or-nothing reservation, release, expiry; on Redis and in process memory alike."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from core.failures import Budget, FailureCounters
from tests.support.overlap import InFlight


@pytest.fixture(params=["redis", "memory"])
async def counters(request, redis_client):
    prefix = f"test:{uuid.uuid4().hex[:12]}:"

    def make(window_s: int) -> FailureCounters:
        return FailureCounters(redis_client if request.param == "redis" else None, prefix, window_s)

    yield make
    async for key in redis_client.scan_iter(match=prefix + "*"):
        await redis_client.delete(key)


async def test_reservation_is_all_or_nothing_and_names_the_full_budget(counters):
    store = counters(60)
    pair, email = Budget("login_pair", ("a@example.com", "10.0.0.1"), 5), Budget("login_email", ("a@example.com",), 2)
    assert (await store.reserve([pair, email])).allowed
    assert (await store.reserve([pair, email])).allowed
    refused = await store.reserve([pair, email])
    assert not refused.allowed and refused.full == email and 1 <= refused.retry_after <= 60
    assert (await store.used("login_pair", pair.key))[0] == 2  # the refused attempt counted nowhere
    await store.release(email)
    assert (await store.reserve([pair, email])).allowed
    assert (await store.used("login_email", email.key))[0] == 2


async def test_release_never_goes_below_zero_and_clear_forgets(counters):
    store = counters(60)
    budget = Budget("login_pair", ("b@example.com", "10.0.0.2"), 1)
    await store.release(budget)
    assert (await store.used("login_pair", budget.key))[0] == 0
    assert await store.count("login_pair", budget.key) == (1, 60)
    assert not (await store.reserve([budget])).allowed
    await store.clear("login_pair", budget.key)
    assert (await store.reserve([budget])).allowed


async def test_a_window_ends_after_its_first_failure(counters):
    store = counters(1)
    budget = Budget("login_email", ("c@example.com",), 1)
    assert (await store.reserve([budget])).allowed
    assert not (await store.reserve([budget])).allowed
    await asyncio.sleep(1.1)
    assert (await store.reserve([budget])).allowed


async def test_concurrent_reservations_take_exactly_the_budget(counters, request):
    store = counters(60)
    budget = Budget("login_email", ("d@example.com",), 7)
    results = await (calls := InFlight()).gather(*(store.reserve([budget]) for _ in range(40)))
    # On Redis all forty were waiting on the server together; in memory a reservation never
    # waits, so each is one step that nothing can interleave with.
    assert calls.peak == (40 if request.node.callspec.params["counters"] == "redis" else 1)
    assert sum(r.allowed for r in results) == 7


def test_keys_never_hold_the_email():
    store = FailureCounters(None, "p:", 60)
    key = store.key(Budget("login_email", ("secret.person@example.com",), 1))
    assert "secret" not in key and key.startswith("p:lf:login_email:")
