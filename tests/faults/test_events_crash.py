"""A server SIGKILLed between a purchase's credit and its events: after a restart the events exist exactly once.

The credit is applied to the wallet (balance and outbox entry in one update) and the process dies before the
ledger entry and its events are written. The events are derived from that outbox entry when it is flushed
(`documents.wallet.notices`), so whichever later path flushes it (the app verifying again, the repair job)
writes them; event ids come from the entry id, so every further path writes nothing new.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.faults.support import payment_body
from tests.faults.test_crash_recovery import RuStore, killed_while_parked, rustore  # noqa: F401 - fixture
from tests.support.crash_runner import REPO, CrashHarness
from tests.support.receiver import Receiver, running_receiver

SECRET = "whsec_" + "c" * 32


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as r:
        yield r


@pytest.fixture
async def crash(tmp_path: Path, rustore: RuStore, receiver: Receiver) -> AsyncIterator[CrashHarness]:  # noqa: F811
    environ = {"APP_ENV": "test", "SETTINGS_FILE": str(REPO / "settings.toml"), "JWT_SECRET": secrets.token_hex(32),
               "BCRYPT_ROUNDS": "4", "JOBS_ENABLED": "false", "RUSTORE_TIMEOUT_S": "2", "RUSTORE_RETRY_DEADLINE_S": "1",
               "EVENTS_WEBHOOK_URLS": receiver.url, "EVENTS_WEBHOOK_SECRET": SECRET, **rustore.environ}
    harness = CrashHarness(tmp_path, environ, dict(os.environ))
    yield harness
    await harness.close()


async def killed_after_the_credit(crash: CrashHarness, rustore: RuStore) -> tuple[dict, dict]:  # noqa: F811
    api = await crash.serve(pause_before_entry="purchase:")
    user = await api.register()
    sdk = rustore.buy("points_100", user)
    await killed_while_parked(crash, api.post("/api/payments/verify", payment_body(sdk), token=user["accessToken"]))
    stored = crash.stored()
    wallet = next(u for u in stored["users"] if str(u["_id"]) == user["userId"])["points"]
    assert wallet["balance"] == 100 and len(wallet["outbox"]) == 1  # the money moved...
    assert not stored.get("events")  # ...and no event was written yet
    return user, sdk


async def deliver(crash: CrashHarness) -> dict:
    code, out = await crash.run("run-job", "event-delivery")
    assert code == 0 and out["outcome"] == "ok", out
    return out["summary"]


async def test_the_app_verifying_again_after_a_restart_emits_the_events_once(crash, rustore, receiver):  # noqa: F811
    user, sdk = await killed_after_the_credit(crash, rustore)
    api = await crash.serve()
    again = await api.post("/api/payments/verify", payment_body(sdk), token=user["accessToken"])
    assert again.status == 200 and again.json["status"] == "already_credited"
    await crash.stop()
    await deliver(crash)
    assert receiver.types() == ["purchase.credited", "points.changed"]
    assert receiver.events[0]["data"]["invoiceId"] == sdk["invoiceId"]
    await crash.run("run-job", "ledger-repair")
    await deliver(crash)
    assert len(receiver.deliveries) == 2 and len(crash.stored()["events"]) == 2


async def test_with_no_later_traffic_the_repair_job_writes_the_entry_and_its_events_once(crash, rustore, receiver):  # noqa: F811
    user, sdk = await killed_after_the_credit(crash, rustore)
    code, repaired = await crash.run("run-job", "ledger-repair", "--clock-offset-s", "60")
    assert code == 0 and repaired["summary"] == {"entries_written": 1, "users_skipped": 0}
    await deliver(crash)
    assert receiver.types() == ["purchase.credited", "points.changed"]
    assert {e["userId"] for e in receiver.events} == {user["userId"]}
    code, _ = await crash.run("run-job", "ledger-repair", "--clock-offset-s", "120")
    await deliver(crash)
    assert len(receiver.deliveries) == 2
