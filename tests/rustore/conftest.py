"""Fixtures: the RuStore emulator on an ephemeral port, a webhook sink, and fast-failing clients."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web

from rustore import InvoiceStatusEvent, Notification, NotificationDecoder, RuStoreClient, RuStoreConfig
from rustore.emulator import Emulator, EmulatorApp, EmulatorProduct, FakeClock, generate_key_pair
from rustore.signing import KeyPair

APP_ID = 3399750
PACKAGE = "com.example.shop"
KEY_ID = "123"
# Noon in Moscow, so UTC and Moscow dates agree for P4 look-ups.
START = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def key_pair() -> KeyPair:
    """The API key pair registered with the emulator."""
    return generate_key_pair()


@pytest.fixture(scope="session")
def stranger_key_pair() -> KeyPair:
    """A key pair the emulator has never seen."""
    return generate_key_pair()


@dataclass
class NotificationKeys:
    """AES-256 keys for real and sandbox notifications."""

    real: str = field(default_factory=lambda: base64.b64encode(os.urandom(32)).decode())
    sandbox: str = field(default_factory=lambda: base64.b64encode(os.urandom(32)).decode())


@pytest.fixture
def notification_keys() -> NotificationKeys:
    """Fresh notification keys per test."""
    return NotificationKeys()


class WebhookSink:
    """A real HTTP server recording RuStore notifications; can answer non-200 a number of times."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.fail_remaining = 0
        self.fail_status = 500
        self.url = ""
        self._server: tornado.httpserver.HTTPServer | None = None

    async def start(self) -> None:
        """Listen on an ephemeral port."""
        sink = self

        class Receiver(tornado.web.RequestHandler):
            def post(self, env: str) -> None:
                if sink.fail_remaining > 0:
                    sink.fail_remaining -= 1
                    self.set_status(sink.fail_status)
                    return
                sink.raw.append(self.request.body)
                sink.received.append({"env": env, "body": json.loads(self.request.body)})

        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self._server = tornado.httpserver.HTTPServer(tornado.web.Application([(r"/hook/(real|sandbox)", Receiver)]))
        self._server.add_sockets(sockets)
        self.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/hook"

    async def stop(self) -> None:
        """Stop listening and close connections."""
        assert self._server is not None
        self._server.stop()
        await self._server.close_all_connections()


@pytest.fixture
async def sink() -> AsyncIterator[WebhookSink]:
    """Webhook receiver for emulator notifications."""
    receiver = WebhookSink()
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest.fixture
def clock() -> FakeClock:
    """The emulator's clock, shared with clients so signed timestamps agree with it."""
    return FakeClock(START)


@pytest.fixture
async def emulator(
    key_pair: KeyPair, clock: FakeClock, sink: WebhookSink, notification_keys: NotificationKeys
) -> AsyncIterator[Emulator]:
    """A started emulator with one app, its key, webhooks pointing at the sink, and a few products."""
    app = EmulatorApp(
        app_id=APP_ID, package_name=PACKAGE, key_id=KEY_ID, public_key=key_pair.public_key_pem,
        notification_url=f"{sink.url}/real", notification_key_b64=notification_keys.real,
        sandbox_notification_url=f"{sink.url}/sandbox", sandbox_notification_key_b64=notification_keys.sandbox,
    )
    emu = Emulator([app], clock=clock, retry_scale=1e-5, tick_interval_s=None, hold_timeout=timedelta(hours=6))
    emu.add_product(APP_ID, EmulatorProduct("coins_100", "consumable", 9900, title="100 coins"))
    emu.add_product(APP_ID, EmulatorProduct("no_ads", "non-consumable", 14900, title="No ads"))
    emu.add_product(APP_ID, EmulatorProduct("premium_month", "subscription", 29900, title="Premium",
                                            period=timedelta(days=30), grace=timedelta(days=3),
                                            hold=timedelta(days=7)))
    emu.add_product(APP_ID, EmulatorProduct("basic_month", "subscription", 9900, period=timedelta(days=30)))
    await emu.start()
    yield emu
    await emu.stop()


ClientFactory = Callable[..., RuStoreClient]


@pytest.fixture
async def make_client(emulator: Emulator, key_pair: KeyPair, clock: FakeClock) -> AsyncIterator[ClientFactory]:
    """Build clients against the emulator with short timeouts; all are closed after the test."""
    clients: list[RuStoreClient] = []

    def build(*, clock_fn: Callable[[], datetime] | None = None, on_call: Any = None,
              on_breaker_change: Any = None, session: aiohttp.ClientSession | None = None,
              **overrides: Any) -> RuStoreClient:
        settings: dict[str, Any] = {
            "key_id": KEY_ID, "private_key_b64": key_pair.private_key_b64, "app_id": APP_ID,
            "package_name": PACKAGE, "api_url": emulator.base_url,
            "timeout_s": 0.5, "retry_deadline_s": 2.0, "retry_max_attempts": 4,
            "retry_initial_backoff_s": 0.01, "retry_max_backoff_s": 0.05,
            "breaker_threshold": 50, "breaker_reset_s": 0.3,
        }
        settings.update(overrides)
        client = RuStoreClient(RuStoreConfig(**settings), session, on_call=on_call,
                               on_breaker_change=on_breaker_change, clock=clock_fn or clock.now)
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.close()


@pytest.fixture
def client(make_client: ClientFactory) -> RuStoreClient:
    """A default client for the emulator's app."""
    return make_client()


def decoded(sink: WebhookSink, keys: NotificationKeys) -> list[Notification]:
    """Every notification the sink received, decoded with the production decoder."""
    decoder = NotificationDecoder(keys.real, keys.sandbox, expected_app_id=APP_ID)
    return [decoder.decode(raw) for raw in sink.raw]


def invoice_statuses(notifications: list[Notification], invoice_id: str) -> list[str]:
    """`status_new` values of one invoice's INVOICE_STATUS events, in arrival order."""
    return [n.event.status_new.value for n in notifications
            if isinstance(n.event, InvoiceStatusEvent) and n.event.invoice_id == invoice_id]
