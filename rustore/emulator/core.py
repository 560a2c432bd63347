"""The `Emulator`: wires state, keys, faults and the notifier, serves HTTP, and mirrors the control API."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web
from loguru import logger

from rustore.emulator import api, control, purchases, subscriptions, views
from rustore.emulator.clock import Clock, FakeClock, SystemClock
from rustore.emulator.config import EmulatorApp, EmulatorProduct, default_retry_schedule
from rustore.emulator.errors import bad_request
from rustore.emulator.faults import Fault, Faults
from rustore.emulator.keys import KeyRegistry
from rustore.emulator.notifier import Notifier
from rustore.emulator.records import SubscriptionRecord
from rustore.emulator.state import Store, Timing
from rustore.emulator.web import NotFoundHandler


class Emulator:
    """RuStore's Public API for configured apps, driven by an injectable clock."""

    def __init__(
        self,
        apps: Sequence[EmulatorApp] = (),
        *,
        clock: Clock | None = None,
        hold_timeout: timedelta = timedelta(hours=6),
        token_ttl_s: int = 900,
        retry_schedule: Sequence[float] | None = None,
        retry_scale: float = 1.0,
        delivery_timeout_s: float = 5.0,
        sandbox_period: timedelta = timedelta(minutes=10),
        charge_retry_interval: timedelta = timedelta(days=1),
        control_token: str | None = None,
        tick_interval_s: float | None = 1.0,
        record_shape: str = "minimal",
    ) -> None:
        self.record_shape = ""
        self.set_record_shape(record_shape)
        self.clock: Clock = clock or SystemClock()
        self.keys = KeyRegistry(token_ttl_s)
        self.faults = Faults()
        schedule = default_retry_schedule() if retry_schedule is None else list(retry_schedule)
        self.notifier = Notifier(self.clock, schedule, retry_scale, delivery_timeout_s)
        timing = Timing(hold_timeout, sandbox_period, 12, charge_retry_interval)
        self.store = Store(self.clock, self.notifier.enqueue, timing)
        self.store.invoice_listeners.append(lambda invoice, at: subscriptions.on_invoice(self.store, invoice, at))
        self.control_token = control_token
        self.stats: Counter[str] = Counter()
        self._tick_interval_s = tick_interval_s
        self._ticker: asyncio.Task[None] | None = None
        self._server: tornado.httpserver.HTTPServer | None = None
        self.base_url: str | None = None
        self._stopping = asyncio.Event()
        self._inflight = 0
        for app in apps:
            self.add_app(app)

    @property
    def auth_calls(self) -> int:
        """Requests received by `/public/auth/`."""
        return self.stats["auth"]

    # --- HTTP -----------------------------------------------------------------------------------

    def make_app(self) -> tornado.web.Application:
        """The Tornado application (Public API + `/_emulator/` control API)."""
        return tornado.web.Application(
            api.routes(self) + control.routes(self),
            default_handler_class=NotFoundHandler,
            default_handler_args={"emulator": self},
        )

    async def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        """Listen on host:port (0 = ephemeral) in the running loop; returns the base URL."""
        sockets = tornado.netutil.bind_sockets(port, host)
        self._server = tornado.httpserver.HTTPServer(self.make_app())
        self._server.add_sockets(sockets)
        await self.start_background()
        self.base_url = f"http://{host}:{sockets[0].getsockname()[1]}"
        return self.base_url

    async def start_background(self) -> None:
        """Start notification delivery and the clock ticker (for embedding via `make_app`)."""
        self._stopping = asyncio.Event()  # fresh per start: an Event belongs to the loop that first waits on it
        await self.notifier.start()
        if self._tick_interval_s and self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def stop(self) -> None:
        """Stop listening, let in-flight requests finish, cancel deliveries and the ticker."""
        self._stopping.set()
        if self._server is not None:
            self._server.stop()
            async with asyncio.timeout(5):
                while self._inflight:
                    await asyncio.sleep(0.01)
            await self._server.close_all_connections()
            self._server = None
            self.base_url = None
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None
        await self.notifier.stop()

    async def _tick(self) -> None:
        assert self._tick_interval_s
        while True:
            await asyncio.sleep(self._tick_interval_s)
            try:
                self.run_due()
            except Exception:  # one broken transition must not stop time for everything else
                logger.exception("emulator transition failed")

    async def sleep(self, seconds: float) -> None:
        """Sleep for a fault delay, waking early when the emulator stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def request_started(self, endpoint: str) -> None:
        """Count a RuStore request (handlers call this)."""
        self.stats[endpoint] += 1
        self._inflight += 1

    def request_finished(self) -> None:
        """Mark a RuStore request done."""
        self._inflight -= 1

    # --- time -----------------------------------------------------------------------------------

    def run_due(self) -> int:
        """Run every automatic transition due by now, oldest first; returns how many ran."""
        now, count = self.clock.now(), 0
        while True:
            candidates: list[tuple[datetime, Any]] = []
            hold = purchases.earliest_hold(self.store)
            if hold is not None:
                candidates.append(hold)
            candidates += [(due, r) for r in self.store.subscriptions.values() if (due := subscriptions.next_due(r))]
            due_now = [c for c in candidates if c[0] <= now]
            if not due_now:
                return count
            at, record = min(due_now, key=lambda pair: pair[0])
            if isinstance(record, SubscriptionRecord):
                subscriptions.fire(self.store, record, at)
            else:
                purchases.move(self.store, record, "REVERSED", at)
            count += 1

    def advance_clock(self, delta: timedelta | float) -> datetime:
        """Move a FakeClock forward and run what became due (hold reversals, renewals, expiries)."""
        self._fake_clock().advance(delta)
        self.run_due()
        return self.clock.now()

    def set_clock(self, moment: datetime) -> datetime:
        """Jump a FakeClock to a later moment and run what became due."""
        self._fake_clock().set(moment)
        self.run_due()
        return self.clock.now()

    def _fake_clock(self) -> FakeClock:
        if not isinstance(self.clock, FakeClock):
            raise bad_request("the emulator runs on the system clock; start it with a FakeClock to move time")
        return self.clock

    # --- setup ----------------------------------------------------------------------------------

    def add_app(self, app: EmulatorApp) -> None:
        """Add an app; its key (if given) covers it, alongside apps already using the same key id."""
        self.store.add_app(app)
        if app.key_id and app.public_key:
            existing = self.keys.keys.get(str(app.key_id))
            covered = set(existing.app_ids or ()) if existing else set()
            self.keys.register(str(app.key_id), app.public_key, covered | {app.app_id})

    def register_key(self, key_id: str, public_key: str | bytes, app_ids: set[int] | None = None,
                     sandbox: bool = True) -> None:
        """Register a key for some apps (None = all apps) with or without sandbox methods."""
        self.keys.register(key_id, public_key, app_ids, sandbox)

    def disable_key(self, key_id: str) -> None:
        """Disable a key: new auth fails with "Company key disabled", its tokens stop working."""
        key = self.keys.keys.get(key_id)
        if key is None:
            raise bad_request("Company key not found")
        key.disabled = True

    def expire_tokens(self) -> int:
        """Expire every issued token."""
        return self.keys.expire_all()

    def add_product(self, app_id: int, product: EmulatorProduct | dict[str, Any]) -> EmulatorProduct:
        """Create or replace a product (an `EmulatorProduct` or control-API JSON)."""
        if isinstance(product, dict):
            product = EmulatorProduct.from_json(product)
        return self.store.add_product(app_id, product)

    def set_record_shape(self, shape: str) -> str:
        """P3/P4 bodies: `minimal` (RuStore's published schema, the default) or `rich` (adds purchaseId...)."""
        if shape not in views.SHAPES:
            raise bad_request(f"record shape must be one of {', '.join(views.SHAPES)}")
        self.record_shape = shape
        return shape

    def set_fault(self, endpoint: str, mode: str, *, delay_s: float | None = None, status: int | None = None,
                  count: int | None = None, match: str | int | None = None) -> Fault:
        """Install a fault on an endpoint (`*` = all RuStore endpoints), or only on requests for one id (`match`)."""
        return self.faults.set(endpoint, mode, delay_s=delay_s, status=status, count=count, match=match)

    def clear_faults(self, endpoint: str | None = None) -> None:
        """Remove one or all faults."""
        self.faults.clear(endpoint)

    # --- acting as the user, the bank and the console --------------------------------------------

    def simulate_purchase_json(self, app_id: int, params: dict[str, Any]) -> dict[str, Any]:
        """Control-API form of `simulate_purchase` (camelCase keys)."""
        self.run_due()
        return purchases.simulate_purchase(self.store, app_id, params)

    def simulate_purchase(self, app_id: int, product_id: str, *, quantity: int = 1, order_id: str | None = None,
                          developer_payload: str | None = None, app_user_id: str | None = None,
                          app_user_email: str | None = None, sandbox: bool = False, purchase_type: str = "ONE_STEP",
                          outcome: str = "success", sdk: str = "pay") -> dict[str, Any]:
        """The user buys a one-time product; returns the Pay SDK's ProductPurchaseResult."""
        return self.simulate_purchase_json(app_id, {
            "productId": product_id, "quantity": quantity, "orderId": order_id,
            "developerPayload": developer_payload, "appUserId": app_user_id, "appUserEmail": app_user_email,
            "sandbox": sandbox, "purchaseType": purchase_type, "outcome": outcome, "sdk": sdk})

    def simulate_subscription_json(self, app_id: int, params: dict[str, Any]) -> dict[str, Any]:
        """Control-API form of `simulate_subscription` (camelCase keys)."""
        self.run_due()
        return subscriptions.simulate_subscription(self.store, app_id, params)

    def simulate_subscription(self, app_id: int, product_id: str, *, order_id: str | None = None,
                              developer_payload: str | None = None, app_user_id: str | None = None,
                              sandbox: bool = False, outcome: str = "success", renewal: str = "success",
                              sdk: str = "pay") -> dict[str, Any]:
        """The user subscribes; `renewal` says whether later charges succeed or fail."""
        return self.simulate_subscription_json(app_id, {
            "productId": product_id, "orderId": order_id, "developerPayload": developer_payload,
            "appUserId": app_user_id, "sandbox": sandbox, "outcome": outcome, "renewal": renewal, "sdk": sdk})

    def invoice_action(self, invoice_id: int, action: str) -> dict[str, Any]:
        """Move an invoice: execute, pay, confirm, reverse, cancel, reject, expire, refund."""
        self.run_due()
        return purchases.apply_action(self.store, self.store.invoice(invoice_id), action).view()

    def subscription_action(self, purchase_id: str, action: str, *, outcome: str | None = None) -> dict[str, Any]:
        """`renew` (charge now), `cancel` (by the user) or `renewal-outcome` (success/fail)."""
        self.run_due()
        record = self.store.subscription(purchase_id)
        if action == "renew":
            subscriptions.charge(self.store, record, self.clock.now())
        elif action == "cancel":
            subscriptions.cancel(self.store, record, by_developer=False)
        elif action == "renewal-outcome":
            subscriptions.set_renewal_outcome(record, str(outcome))
        else:
            raise bad_request("action must be renew, cancel or renewal-outcome")
        return record.view()

    def send_test_notification(self, app_id: int, sandbox: bool = False) -> dict[str, Any]:
        """TEST_EVENT(_SANDBOX) with data `{"test": "TEST"}`."""
        self.store.app(app_id)
        self.store.emit(app_id, "TEST_EVENT", {"test": "TEST"}, sandbox)
        return self.notifier.notifications[-1].view()

    # --- inspection -----------------------------------------------------------------------------

    def notifications(self) -> list[dict[str, Any]]:
        """Every notification generated, with plaintext content and delivery state."""
        return [n.view() for n in self.notifier.notifications]

    def deliveries(self) -> list[dict[str, Any]]:
        """Every webhook delivery attempt."""
        return [a.view() for a in self.notifier.attempts]

    async def drain_notifications(self, timeout_s: float = 10.0, *, include_retries: bool = False) -> None:
        """Wait until queued notifications have been attempted (optionally retries too)."""
        await self.notifier.drain(timeout_s, include_retries=include_retries)

    def state_view(self) -> dict[str, Any]:
        """Snapshot for the control API."""
        store = self.store
        return {
            "now": self.clock.now().isoformat(),
            "apps": [a.public_view() for a in store.apps.values()],
            "products": {str(k): [p.view() for p in v.values()] for k, v in store.products.items()},
            "invoices": [i.view() for i in store.invoices.values()],
            "subscriptions": [s.view() for s in store.subscriptions.values()],
        }
