"""A RuStore emulator wired to a running server, with shortcuts tests use to act as the Android app."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from rustore.emulator import Emulator, EmulatorApp, FakeClock
from server import Service
from tests.support.http import ApiClient


@dataclass
class Emulated:
    """The emulator, its app and fake clock, and our server (service + HTTP client) using them."""

    emulator: Emulator
    app: EmulatorApp
    clock: FakeClock
    service: Service
    api: ApiClient

    @property
    def app_id(self) -> int:
        return self.app.app_id

    def buy(self, product_id: str, *, user: dict | None = None, **params: Any) -> dict:
        """What the Pay SDK returns to the app after the user pays (ONE_STEP unless purchase_type given).

        With `user`, the app passed that account's id as the SDK's appUserId, as our orders tell it to.
        """
        if user is not None:
            params["app_user_id"] = user["userId"]
        return self.emulator.simulate_purchase(self.app_id, product_id, **params)

    async def order_and_buy(self, user: dict, product_id: str, **params: Any) -> dict:
        """The documented app flow: a server order first, then the Pay SDK purchase carrying it."""
        resp = await self.api.post("/api/payments/orders", {"productId": product_id}, token=user["accessToken"])
        assert resp.status == 201, resp.text
        order = resp.json
        return self.buy(product_id, order_id=order["orderId"], developer_payload=order["developerPayload"],
                        app_user_id=order["appUserId"], **params)

    def subscribe(self, product_id: str, **params: Any) -> dict:
        """What the Pay SDK returns after the user subscribes."""
        return self.emulator.simulate_subscription(self.app_id, product_id, **params)

    async def advance(self, delta: timedelta | float) -> None:
        """Move time forward for RuStore and for our server alike, running what became due."""
        self.emulator.advance_clock(delta)
        await self.settle()

    async def settle(self, timeout_s: float = 10.0) -> None:
        """Wait until the emulator delivered its notifications and our server finished processing them."""
        await self.emulator.drain_notifications(timeout_s)
        ctx = self.service.ctx
        for _ in range(int(timeout_s / 0.01)):
            if not ctx.background:
                return
            await asyncio.wait(set(ctx.background), timeout=0.01)
        raise TimeoutError("background processing did not finish")
