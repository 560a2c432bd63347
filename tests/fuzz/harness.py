"""The fuzz target: the real app (with a RuStore emulator and a funded user) and the Schemathesis command against it.

Used by both `test_schemathesis.py` and `python -m tests.fuzz.run`, so CI and a local replay start the
same server and run the same command.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as redis_asyncio
from mongomock_motor import AsyncMongoMockClient

from core.context import create_context
from core.emulated import attach, build_emulator
from documents import wallet
from rustore.emulator import Emulator
from server import Service
from tests.conftest import TEST_REDIS_URL, make_settings
from tests.oauth.fake_vk import oauth_settings, running_vk
from tests.oauth.fakes import running_google
from tests.support.http import ApiClient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CONFIG = HERE / "schemathesis.toml"
SEED = 20240607
MAX_EXAMPLES = 100  # per operation and phase: ~50 s on the 2-core development machine, under a minute with coverage on
WALL_CLOCK_S = 170.0  # the bound is 3 minutes; the subprocess is killed past this
PASSWORD = "fuzzing password 1"
GRANT = 1_000_000  # so spends and generations reach their success paths, not only insufficient_points


@dataclass(frozen=True)
class Target:
    """A running server the fuzzer can reach, and the account it signs in as."""

    base_url: str
    email: str
    password: str
    service: Service


@contextlib.asynccontextmanager
async def fuzz_target() -> AsyncIterator[Target]:
    """Start the app wired to a RuStore emulator and fake Google/VK ID, with one funded user; stop all afterwards."""
    async with contextlib.AsyncExitStack() as stack:
        google = await stack.enter_async_context(running_google())
        vk = await stack.enter_async_context(running_vk())
        # Generous limits: the fuzzer sends thousands of requests from one address (limits have their own tests).
        base = make_settings(rate_limit_per_minute=10**7, auth_rate_limit_per_minute=10**7,
                             login_failures_per_pair=10**7, login_failures_per_email=10**7, **oauth_settings(google, vk))
        stack.push_async_callback(_clear_redis, base.redis_prefix)
        emulator, app, settings = build_emulator(base, tick_interval_s=None)
        settings = dataclasses.replace(settings, rustore_api_url=await emulator.start(port=0))
        stack.push_async_callback(emulator.stop)
        store = AsyncMongoMockClient(tz_aware=True)
        service = Service(create_context(settings, mongo=(store, store[settings.mongo_db], True)))
        base_url = f"http://127.0.0.1:{await service.start(host='127.0.0.1', port=0)}"
        stack.push_async_callback(service.stop)
        attach(app, base_url)
        client = ApiClient(base_url)
        stack.push_async_callback(client.close)
        user = await client.register(f"fuzz-{uuid.uuid4().hex[:8]}@example.com", PASSWORD, deviceId="fuzz-phone")
        await wallet.credit(service.ctx.db, user["userId"], GRANT, "admin_grant", "fuzz:grant")
        await _history(client, emulator, app.app_id, user)
        yield Target(base_url, user["email"], PASSWORD, service)


async def _history(client: ApiClient, emulator: Emulator, app_id: int, user: dict) -> None:
    """Give the user a purchase, a subscription and a card, so list answers hold items the schema checks apply to."""
    token = user["accessToken"]
    bought = emulator.simulate_purchase(app_id, "points_100", app_user_id=user["userId"])
    sub = emulator.simulate_subscription(app_id, "premium_monthly")
    calls = [("/api/payments/verify", {k: bought[k] for k in ("invoiceId", "purchaseId", "productId", "orderId")}, None),
             ("/api/subscriptions/verify", {k: sub[k] for k in ("purchaseId", "productId", "orderId")}, None),
             ("/api/generation/request", {"kind": "card", "occasion": "Birthday"}, {"Idempotency-Key": "fuzz-card"})]
    for path, body, headers in calls:
        resp = await client.post(path, {k: v for k, v in body.items() if v is not None}, token=token, headers=headers)
        assert resp.status == 200, (path, resp.status, resp.text)


async def _clear_redis(prefix: str) -> None:
    client = redis_asyncio.Redis.from_url(TEST_REDIS_URL)
    try:
        async for key in client.scan_iter(match=prefix + "*", count=500):
            await client.delete(key)
    finally:
        await client.aclose()


def command(base_url: str, seed: int = SEED, max_examples: int = MAX_EXAMPLES) -> list[str]:
    """The `st run` command line (checks, phases, auth and the error-shape hook live in schemathesis.toml)."""
    # Loaded from a URL, Schemathesis leaves out the operation serving the document unless a filter names it.
    return [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
            f"{base_url}/api/openapi.json", "--include-path-regex", "^/", "--seed", str(seed),
            "--max-examples", str(max_examples), "--workers", "1", "--no-color"]


def environment(target: Target) -> dict[str, str]:
    """The subprocess environment: credentials for the config's dynamic auth; Hypothesis' caches out of the tree."""
    return {**os.environ, "FUZZ_EMAIL": target.email, "FUZZ_PASSWORD": target.password, "COLUMNS": "160",
            "HYPOTHESIS_STORAGE_DIRECTORY": os.path.join(tempfile.gettempdir(), "rsb-fuzz-hypothesis")}


async def run_schemathesis(target: Target, seed: int = SEED, max_examples: int = MAX_EXAMPLES,
                           timeout_s: float = WALL_CLOCK_S, stream: bool = False) -> tuple[int, str]:
    """Run Schemathesis against the target without blocking its event loop; (exit code, output unless streamed)."""
    pipe = None if stream else asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(
        *command(target.base_url, seed, max_examples), cwd=ROOT, env=environment(target),
        stdout=pipe, stderr=asyncio.subprocess.STDOUT if pipe else None)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        return -1, (out or b"").decode(errors="replace") + f"\n[killed after {timeout_s:.0f} s]"
    return proc.returncode or 0, (out or b"").decode(errors="replace")
