"""The outage recovery task: it waits instead of spinning while RuStore stays down, and ends once nothing is left."""

from __future__ import annotations

import asyncio

import pytest

from rustore import RuStoreUnavailable

SHORT = {"rustore_timeout_s": 0.2, "rustore_retry_deadline_s": 0.3, "rustore_breaker_threshold": 2,
         "rustore_breaker_reset_s": 0.2, "rustore_recovery_probe_s": 0.3}


async def test_a_long_outage_with_nothing_recorded_costs_a_few_passes_not_a_busy_loop(emulated):
    env = await emulated(webhooks=False, **SHORT)
    client, recovery = env.service.ctx.rustore, env.service.ctx.recovery
    env.emulator.set_fault("*", "error")
    for invoice_id in (1, 2, 3):  # calls no purchase records: an outage with nothing to re-check
        with pytest.raises(RuStoreUnavailable):
            await client.get_payment(invoice_id)
    assert client.outage_active and client.breaker_state == "open"
    await asyncio.sleep(1.5)
    assert 1 <= recovery.passes <= 10  # one pass per probe interval or breaker period, not thousands
    env.emulator.clear_faults()
    await client.list_catalog_products()  # anyone's successful call is the recovery
    await recovery.wait_idle(5)
    assert not client.outage_active and client.breaker_state == "closed"
