"""A server process SIGKILLed between a wallet update and its ledger entry, then restarted: nothing lost or doubled.

Design. The ledger applies an operation in one atomic update of the user document (balance and an
outbox entry together) and writes the `transactions` entry afterwards; the purchase path credits
through that ledger with a key derived from the invoice. The dangerous moment is a process dying
between the two writes. Here that moment is real: the real server runs in its own process
(`tests.support.crash_harness`: `server.Service`, real handlers, real ledger, HTTP over a socket) on a
mongomock store that is written through to a file after every write, standing in for a durable
MongoDB. The harness parks the request right before the entry insert, after the wallet update
reached "disk"; the test then kills the process with SIGKILL, checks the stored state is exactly
"balance changed, entry missing", and starts a new process on it. Production code has no hook for
this: the store is the only test-side part.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from mongomock_motor import AsyncMongoMockClient

from core.emulated import build_emulator
from core.settings import load_settings
from documents.wallet import verify_ledger
from rustore.emulator import Emulator, FakeClock
from tests.faults.support import payment_body
from tests.handlers.test_conventions import assert_error_shape
from tests.support.crash_runner import REPO, CrashHarness
from tests.support.durable_store import load_into


@dataclass
class RuStore:
    """The emulator in this process, the app it sells for, and the settings server processes need to call it."""

    emulator: Emulator
    app_id: int
    environ: dict[str, str]

    def buy(self, product_id: str, user: dict) -> dict:
        """What the Pay SDK hands the app after the user paid (the app passed the user's id as appUserId)."""
        return self.emulator.simulate_purchase(self.app_id, product_id, app_user_id=user["userId"])


@pytest.fixture
async def rustore() -> AsyncIterator[RuStore]:
    """The RuStore emulator (its clock moves only when told) for the server processes of one test."""
    base = load_settings({"APP_ENV": "test", "SETTINGS_FILE": str(REPO / "settings.toml")})
    emulator, app, settings = build_emulator(base, clock=FakeClock(), retry_scale=0.001, tick_interval_s=None)
    url = await emulator.start(port=0)
    yield RuStore(emulator, app.app_id, {
        "RUSTORE_API_URL": url, "RUSTORE_KEY_ID": str(settings.rustore_key_id),
        "RUSTORE_PRIVATE_KEY": settings.rustore_private_key, "RUSTORE_APP_ID": str(settings.rustore_app_id),
        "RUSTORE_PACKAGE_NAME": settings.rustore_package_name})
    await emulator.stop()


@pytest.fixture
async def crash(tmp_path: Path, rustore: RuStore) -> AsyncIterator[CrashHarness]:
    """Server processes on one durable store; every process still running is killed at teardown."""
    environ = {"APP_ENV": "test", "SETTINGS_FILE": str(REPO / "settings.toml"), "JWT_SECRET": secrets.token_hex(32),
               "BCRYPT_ROUNDS": "4", "JOBS_ENABLED": "false", "RUSTORE_TIMEOUT_S": "2", "RUSTORE_RETRY_DEADLINE_S": "1",
               **rustore.environ}
    harness = CrashHarness(tmp_path, environ, dict(os.environ))
    yield harness
    await harness.close()


async def killed_while_parked(crash: CrashHarness, request) -> str:
    """Send a request that the server parks before its ledger entry, SIGKILL the server; the key it held."""
    pending = asyncio.ensure_future(request)
    key = await crash.wait_paused()
    await crash.kill()
    with pytest.raises(aiohttp.ClientError):  # the app never gets an answer
        await pending
    return key


def wallet_of(stored: dict, user_id: str) -> dict:
    return next(u for u in stored["users"] if str(u["_id"]) == user_id)["points"]


def entries_of(stored: dict, user_id: str) -> list[dict]:
    return sorted((e for e in stored.get("transactions", []) if str(e["user_id"]) == user_id), key=lambda e: e["seq"])


async def assert_settled(crash: CrashHarness, user_id: str, expected: list[tuple[str, int]]) -> None:
    """On the stored state: exactly these entries, balance == their sum == the last balance_after, audit clean."""
    stored = crash.stored()
    entries = entries_of(stored, user_id)
    assert [(e["type"], e["amount"]) for e in entries] == expected
    points = wallet_of(stored, user_id)
    assert points["balance"] == sum(a for _, a in expected) == entries[-1]["balance_after"]
    assert not points.get("outbox") and "pending_since" not in points
    db = AsyncMongoMockClient(tz_aware=True)["audit"]
    load_into(db.delegate, crash.state)
    audit = await verify_ledger(db)
    assert audit.ok, audit.drift


async def test_spend_killed_before_its_entry_is_charged_once_and_the_replay_returns_the_original(crash, rustore):
    api = await crash.serve(pause_before_entry="spend:")
    user = await api.register()
    token, spend = user["accessToken"], {"amount": 30, "reason": "sticker"}
    sdk = rustore.buy("points_100", user)
    assert (await api.post("/api/payments/verify", payment_body(sdk), token=token)).json["balance"] == 100
    key = await killed_while_parked(crash, api.post("/api/points/spend", spend, token=token,
                                                    headers={"Idempotency-Key": "crash-1"}))
    assert key == "spend:crash-1"
    stored = crash.stored()  # killed exactly between the two steps: balance moved, entry only in the outbox
    points = wallet_of(stored, user["userId"])
    assert points["balance"] == 70 and [e["idempotency_key"] for e in points["outbox"]] == [key]
    assert [e["idempotency_key"] for e in entries_of(stored, user["userId"])] == [f"purchase:{sdk['invoiceId']}"]
    lost_id = str(points["outbox"][0]["_id"])

    api = await crash.serve()  # a new process on what the old one left; the access token still works
    later = await api.post("/api/points/spend", {"amount": 10}, token=token, headers={"Idempotency-Key": "after"})
    assert later.status == 200 and later.json["balance"] == 60  # this op wrote the crashed entry first, in order
    for _ in range(2):  # the app retrying the lost request gets the original answer, and is not charged again
        replay = await api.post("/api/points/spend", spend, token=token, headers={"Idempotency-Key": "crash-1"})
        assert replay.status == 200, replay.text
        assert replay.json["transaction"]["id"] == lost_id and replay.json["balance"] == 70
    other = await api.post("/api/points/spend", {"amount": 31}, token=token, headers={"Idempotency-Key": "crash-1"})
    assert_error_shape(other, 422, "idempotency_key_mismatch")
    assert (await api.get("/api/points/balance", token=token)).json["balance"] == 60
    await crash.stop()
    await assert_settled(crash, user["userId"], [("buy", 100), ("spend", -30), ("spend", -10)])


async def test_purchase_killed_before_its_credit_entry_is_credited_once_when_verified_again(crash, rustore):
    api = await crash.serve(pause_before_entry="purchase:")
    user = await api.register()
    token = user["accessToken"]
    sdk = rustore.buy("points_100", user)
    key = await killed_while_parked(crash, api.post("/api/payments/verify", payment_body(sdk), token=token))
    assert key == f"purchase:{sdk['invoiceId']}"
    stored = crash.stored()
    assert wallet_of(stored, user["userId"])["balance"] == 100 and not entries_of(stored, user["userId"])
    assert [(p["state"], p.get("credit_entry_id")) for p in stored["purchases"]] == [("pending", None)]

    api = await crash.serve()
    again = await api.post("/api/payments/verify", payment_body(sdk), token=token)
    assert again.status == 200, again.text
    assert again.json["status"] == "already_credited" and again.json["balance"] == 100
    assert again.json["purchase"]["status"] == "confirmed" and again.json["purchase"]["pointsGranted"] == 100
    await crash.stop()
    await assert_settled(crash, user["userId"], [("buy", 100)])


async def test_crash_with_no_later_traffic_is_finished_by_ledger_repair_and_purchase_reconcile(crash, rustore):
    api = await crash.serve(pause_before_entry="purchase:")
    user = await api.register()
    sdk = rustore.buy("points_100", user)
    await killed_while_parked(crash, api.post("/api/payments/verify", payment_body(sdk), token=user["accessToken"]))
    lost_id = wallet_of(crash.stored(), user["userId"])["outbox"][0]["_id"]

    # Nobody comes back; the scheduled jobs run later, as `server.py run-job` would run them.
    code, repaired = await crash.run("run-job", "ledger-repair", "--clock-offset-s", "60")
    assert code == 0 and repaired["summary"] == {"entries_written": 1, "users_skipped": 0}
    rustore.emulator.advance_clock(timedelta(minutes=2))
    code, reconciled = await crash.run("run-job", "purchase-reconcile", "--clock-offset-s", "120")
    assert code == 0 and reconciled["summary"]["checked"] == 1
    assert reconciled["summary"]["credited"] == 0  # already credited: the repair wrote that very entry
    code, audit = await crash.run("audit-ledger")
    assert code == 0 and audit["ok"] and audit["drift"] == []
    purchase = crash.stored()["purchases"][0]
    assert purchase["state"] == "confirmed" and purchase["credit_entry_id"] == lost_id
    await assert_settled(crash, user["userId"], [("buy", 100)])
