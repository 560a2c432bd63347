"""Every emulator fault mode against the client: retries, deadlines, no retry on 4xx, breaker, metrics hook."""

from __future__ import annotations

import asyncio
import socket
import time

import aiohttp
import pytest

from rustore import RuStoreBreakerOpen, RuStoreNotFound, RuStoreUnavailable
from rustore.emulator import Emulator
from tests.rustore.conftest import APP_ID, ClientFactory


async def test_slow_answer_within_timeout_succeeds(emulator: Emulator, make_client: ClientFactory) -> None:
    client = make_client()
    emulator.set_fault("catalog_products", "slow", delay_s=0.2)
    started = time.monotonic()
    assert len(await client.list_catalog_products()) == 2
    assert time.monotonic() - started >= 0.2  # the answer really was slow
    assert emulator.stats["catalog_products"] == 1


async def test_timeouts_are_retried_until_the_deadline_then_unavailable(
    emulator: Emulator, make_client: ClientFactory
) -> None:
    client = make_client(timeout_s=0.2, retry_deadline_s=1.0, retry_max_attempts=10)
    await client.list_catalog_products()
    emulator.set_fault("catalog_products", "timeout", delay_s=5)
    started = time.monotonic()
    with pytest.raises(RuStoreUnavailable, match="did not answer"):
        await client.list_catalog_products()
    assert time.monotonic() - started < 1.6
    assert 1 + 3 <= emulator.stats["catalog_products"] <= 1 + 6


async def test_timed_out_confirm_is_not_blindly_retried(emulator: Emulator, make_client: ClientFactory) -> None:
    result = emulator.simulate_purchase(APP_ID, "coins_100", purchase_type="TWO_STEP")
    client = make_client(timeout_s=0.2)
    emulator.set_fault("purchase_confirm", "timeout", delay_s=5)
    with pytest.raises(RuStoreUnavailable) as info:
        await client.confirm_purchase(result["purchaseId"])
    assert info.value.retryable and info.value.request_sent
    assert emulator.stats["purchase_confirm"] == 1


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_retried_and_recover(
    emulator: Emulator, make_client: ClientFactory, status: int
) -> None:
    result = emulator.simulate_purchase(APP_ID, "coins_100")
    emulator.set_fault("payment_v2", "error", status=status, count=2)
    payment = await make_client().get_payment(result["invoiceId"])
    assert payment.invoice_id == result["invoiceId"]
    assert emulator.stats["payment_v2"] == 3


async def test_gateway_503_on_a_mutation_is_retried(emulator: Emulator, make_client: ClientFactory) -> None:
    result = emulator.simulate_purchase(APP_ID, "coins_100", purchase_type="TWO_STEP")
    emulator.set_fault("purchase_confirm", "error", status=503, count=1)
    await make_client().confirm_purchase(result["purchaseId"])
    assert emulator.stats["purchase_confirm"] == 2


async def test_persistent_5xx_is_unavailable_with_status(emulator: Emulator, make_client: ClientFactory) -> None:
    emulator.set_fault("*", "error", status=502)
    with pytest.raises(RuStoreUnavailable) as info:
        await make_client(retry_max_attempts=3).list_catalog_products()
    assert info.value.http_status == 502
    assert emulator.stats["auth"] == 3  # the auth call itself was retried and failed


async def test_malformed_json_is_unavailable_and_retried(emulator: Emulator, make_client: ClientFactory) -> None:
    result = emulator.simulate_purchase(APP_ID, "coins_100")
    client = make_client()
    emulator.set_fault("payment_v2", "malformed", count=1)
    assert (await client.get_payment(result["invoiceId"])).invoice_id == result["invoiceId"]
    emulator.set_fault("payment_v2", "malformed")
    with pytest.raises(RuStoreUnavailable, match="malformed JSON"):
        await client.get_payment(result["invoiceId"])


async def test_4xx_is_never_retried(emulator: Emulator, make_client: ClientFactory) -> None:
    with pytest.raises(RuStoreNotFound):
        await make_client().get_payment(1)
    assert emulator.stats["payment_v2"] == 1


async def test_connection_refused_is_unavailable_and_request_not_sent(make_client: ClientFactory) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(api_url=f"http://127.0.0.1:{port}", retry_max_attempts=2)
    with pytest.raises(RuStoreUnavailable) as info:
        await client.list_catalog_products()
    assert info.value.request_sent is False and "cannot connect" in str(info.value)


async def test_breaker_opens_on_failures_across_distinct_requests_and_stops_calling(
    emulator: Emulator, make_client: ClientFactory
) -> None:
    changes: list[str] = []
    client = make_client(breaker_threshold=3, retry_max_attempts=1, on_breaker_change=changes.append)
    await client.list_catalog_products()
    emulator.set_fault("payment_v2", "error", status=500)
    for invoice_id in (101, 102, 103):  # three different invoices failing: RuStore itself is in trouble
        with pytest.raises(RuStoreUnavailable) as info:
            await client.get_payment(invoice_id)
        assert info.value.outage == (invoice_id != 101)  # the first failure alone may be that invoice's own
    assert client.breaker_state == "open" and changes == ["open"] and client.breaker.opens == 1
    calls = emulator.stats["payment_v2"]
    with pytest.raises(RuStoreBreakerOpen, match="circuit breaker is open") as refused:
        await client.get_payment(104)
    assert 0 < refused.value.retry_after_s <= 0.3 and refused.value.outage
    assert emulator.stats["payment_v2"] == calls  # RuStore was not hammered
    emulator.clear_faults()
    await asyncio.sleep(0.35)
    assert client.breaker_state == "half_open"
    await client.list_catalog_products()  # the trial call succeeds
    assert client.breaker_state == "closed" and changes == ["open", "half_open", "closed"]


async def test_one_request_failing_again_and_again_never_opens_the_breaker(
    emulator: Emulator, make_client: ClientFactory
) -> None:
    client = make_client(breaker_threshold=2, retry_max_attempts=5)
    await client.list_catalog_products()
    emulator.set_fault("payment_v2", "error", status=503)
    for _ in range(6):  # 6 calls x 5 attempts of the same invoice count as one failing request
        with pytest.raises(RuStoreUnavailable) as info:
            await client.get_payment(7)
        assert type(info.value) is RuStoreUnavailable and not info.value.outage
    assert emulator.stats["payment_v2"] == 6 * 5
    assert client.breaker_state == "closed" and client.breaker.opens == 0
    assert client.breaker.failure_rates()["GET /public/v2/purchase/{invoiceId}"] == 1.0
    assert len(await client.list_catalog_products()) == 2  # everyone else's calls go through


async def test_breaker_open_is_not_retried_inside_the_deadline(
    emulator: Emulator, make_client: ClientFactory
) -> None:
    client = make_client(breaker_threshold=2, retry_max_attempts=5, breaker_reset_s=30)
    await client.list_catalog_products()
    emulator.set_fault("payment_v2", "error", status=500)
    for invoice_id in (1, 2):
        with pytest.raises(RuStoreUnavailable):
            await client.get_payment(invoice_id)
    assert client.breaker_state == "open"
    started = time.monotonic()
    with pytest.raises(RuStoreBreakerOpen):
        await client.get_payment(3)
    assert emulator.stats["payment_v2"] == 2 * 5 and time.monotonic() - started < 0.1


async def test_not_found_answers_do_not_trip_the_breaker(emulator: Emulator, make_client: ClientFactory) -> None:
    client = make_client(breaker_threshold=2)
    for _ in range(4):
        with pytest.raises(RuStoreNotFound):
            await client.get_payment(1)
    assert client.breaker_state == "closed"


async def test_every_call_is_reported_to_the_metrics_hook(emulator: Emulator, make_client: ClientFactory) -> None:
    calls: list[tuple[str, str, int | None, float]] = []
    client = make_client(on_call=lambda *args: calls.append(args))
    emulator.set_fault("payment_v2", "error", status=503, count=1)
    with pytest.raises(RuStoreNotFound):
        await client.get_payment(5)
    assert [(c[0], c[1], c[2]) for c in calls] == [
        ("POST /public/auth/", "ok", 200),
        ("GET /public/v2/purchase/{invoiceId}", "unavailable", 503),
        ("GET /public/v2/purchase/{invoiceId}", "not_found", 404),
    ]
    assert all(c[3] >= 0 for c in calls)


async def test_broken_metrics_hook_does_not_break_calls(emulator: Emulator, make_client: ClientFactory) -> None:
    def explode(*_: object) -> None:
        raise RuntimeError("metrics down")

    assert len(await make_client(on_call=explode).list_catalog_subscriptions()) == 2


async def test_caller_supplied_session_is_used_and_left_open(emulator: Emulator, make_client: ClientFactory) -> None:
    async with aiohttp.ClientSession() as session:
        client = make_client(session=session)
        await client.list_catalog_subscriptions()
        await client.close()
        assert not session.closed
