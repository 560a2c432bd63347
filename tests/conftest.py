"""Shared fixtures: the real app on an ephemeral port, an in-memory store and a real Redis server."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio as redis_asyncio
from mongomock_motor import AsyncMongoMockClient

from core.context import create_context
from core.emulated import attach, build_emulator
from core.settings import load_settings
from rustore.emulator import FakeClock
from server import Service
from tests.support import index_check
from tests.support.emulated import Emulated
from tests.support.http import ApiClient

# MongoDB's notablescan and its write rules, for every store the suite creates (tests/support/index_check.py).
index_check.install()

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_ENV = {"APP_ENV": "test", "SETTINGS_FILE": os.path.join(os.path.dirname(__file__), "..", "settings.toml")}
# Fast bcrypt and generous limits unless a test asks otherwise; each test gets its own Redis namespace.
DEFAULTS: dict[str, Any] = {"bcrypt_rounds": 4, "rate_limit_per_minute": 100000, "auth_rate_limit_per_minute": 100000,
                            "verify_rate_limit_per_minute": 100000}


def make_settings(**overrides: Any):
    """Test settings: defaults above, then overrides, with a unique Redis prefix."""
    values = {**DEFAULTS, "redis_url": TEST_REDIS_URL, "redis_prefix": f"test:{uuid.uuid4().hex[:12]}:",
              "jobs_enabled": False, **overrides}
    return load_settings(TEST_ENV, **values)


async def _delete_prefix(client: Any, prefix: str) -> None:
    async for key in client.scan_iter(match=prefix + "*", count=500):
        await client.delete(key)


@pytest.fixture(autouse=True)
def queries_use_indexes() -> Iterator[None]:
    """Fail the test whose application code sent a query no declared index serves (even if the app swallowed it)."""
    before = len(index_check.VIOLATIONS)
    yield
    new = index_check.VIOLATIONS[before:]
    if new:
        pytest.fail("queries without an index:\n" + "\n".join(dict.fromkeys(new)), pytrace=False)


@pytest.fixture
async def redis_client() -> AsyncIterator[Any]:
    """A client to the real test Redis server."""
    client = redis_asyncio.Redis.from_url(TEST_REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:  # noqa: BLE001
        await client.aclose()
        pytest.fail(f"Tests need a Redis server at {TEST_REDIS_URL} (bash .ci/run starts one): {exc}")
    yield client
    await client.aclose()


# Every store a test's server wrote to, audited once more when the whole run ends (pytest_sessionfinish).
LEDGERS_TO_AUDIT: list[tuple[str, Any]] = []


@pytest.fixture
async def start_server(redis_client: Any, request: pytest.FixtureRequest
                       ) -> AsyncIterator[Callable[..., Awaitable[tuple[Service, ApiClient]]]]:
    """Factory: start the real app with settings overrides; returns (service, client)."""
    started: list[tuple[Service, ApiClient, str]] = []

    async def start(mongo: Any = None, settings: Any = None, clock: Any = None, **overrides: Any
                    ) -> tuple[Service, ApiClient]:
        settings = settings or make_settings(**overrides)
        store = mongo or AsyncMongoMockClient(tz_aware=True)
        ctx = create_context(settings, mongo=(store, store[settings.mongo_db], True), clock=clock)
        if request.node.get_closest_marker("ledger_drift") is None:
            LEDGERS_TO_AUDIT.append((request.node.nodeid, ctx.db))
        service = Service(ctx)
        port = await service.start(host="127.0.0.1", port=0)
        client = ApiClient(f"http://127.0.0.1:{port}")
        started.append((service, client, settings.redis_prefix))
        return service, client

    yield start
    for service, client, prefix in reversed(started):
        await client.close()
        await service.stop()
        await _delete_prefix(redis_client, prefix)


@pytest.fixture
def record_shape() -> str:
    """The emulator's P3/P4 field set: RuStore's published minimum; test modules may parametrize it."""
    return "minimal"


@pytest.fixture
async def emulated(start_server: Callable[..., Awaitable[tuple[Service, ApiClient]]], record_shape: str
                   ) -> AsyncIterator[Callable[..., Awaitable[Emulated]]]:
    """Factory: a RuStore emulator on a fake clock plus our server wired to it (client, webhooks, clock)."""
    running: list[Emulated] = []

    async def start(mongo: Any = None, emulator_options: dict | None = None, webhooks: bool = True,
                    **overrides: Any) -> Emulated:
        clock = FakeClock()
        options = {"retry_scale": 0.001, "delivery_timeout_s": 2.0, "tick_interval_s": None,
                   "record_shape": record_shape, **(emulator_options or {})}
        # Short RuStore deadlines keep fault tests fast; the breaker has its own tests in tests/rustore.
        base = make_settings(**{"rustore_timeout_s": 2.0, "rustore_retry_deadline_s": 1.0,
                                "rustore_breaker_threshold": 1000, **overrides})
        emulator, app, settings = build_emulator(base, clock=clock, **options)
        url = await emulator.start(port=0)
        settings = dataclasses.replace(settings, rustore_api_url=url)
        service, client = await start_server(mongo=mongo, settings=settings, clock=clock.now)
        if webhooks:  # off when a test proves the path that works without notifications (jobs, verify)
            attach(app, client.base_url)
        env = Emulated(emulator, app, clock, service, client)
        running.append(env)
        return env

    yield start
    for env in running:
        await env.emulator.stop()


@pytest.fixture
async def served(start_server: Callable[..., Awaitable[tuple[Service, ApiClient]]]) -> tuple[Service, ApiClient]:
    """The app with default test settings and a client for it."""
    return await start_server()


@pytest.fixture
def api(served: tuple[Service, ApiClient]) -> ApiClient:
    """A client for the app with default test settings."""
    return served[1]


@pytest.fixture
def service(served: tuple[Service, ApiClient]) -> Service:
    """The running app with default test settings (its context is `service.ctx`)."""
    return served[0]


async def _audit_every_ledger() -> list[str]:
    from documents.wallet import verify_ledger

    problems = []
    for nodeid, db in LEDGERS_TO_AUDIT:
        audit = await verify_ledger(db, pending_grace=timedelta(days=3650))
        if not audit.ok:
            problems.append(f"{nodeid}: {[(str(d.user_id), d.kind) for d in audit.drift][:5]}")
    return problems


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The ledger audit over everything the tests created: any drift fails the run."""
    if not LEDGERS_TO_AUDIT or exitstatus not in (0, 1):
        return
    problems = asyncio.run(_audit_every_ledger())
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"ledger audit over the stores of {len(LEDGERS_TO_AUDIT)} test servers: "
                            + ("clean" if not problems else f"DRIFT in {len(problems)}"))
        for line in problems:
            reporter.write_line("  " + line)
    if problems:
        session.exitstatus = 1
