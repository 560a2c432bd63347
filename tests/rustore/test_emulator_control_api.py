"""The `/_emulator/` control API over real HTTP, combined with the client reading the results."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
import tornado.httpserver
import tornado.netutil

from rustore import InvoiceStatus, RuStoreClient, RuStoreUnavailable, SubscriptionStatus
from rustore.emulator import Emulator, EmulatorApp, FakeClock, generate_key_pair
from tests.rustore.conftest import APP_ID, START, ClientFactory, NotificationKeys, WebhookSink, decoded


class Control:
    """Tiny HTTP helper for the control API."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str | None = None) -> None:
        self.session, self.base = session, base + "/_emulator"
        self.headers = {"X-Emulator-Token": token} if token else {}

    async def call(self, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        async with self.session.request(method, self.base + path, json=body, headers=self.headers) as response:
            data = await response.json()
            if expect is not None:
                assert response.status == expect, data
            return data


@pytest.fixture
async def control(emulator: Emulator) -> Any:
    async with aiohttp.ClientSession() as session:
        yield Control(session, str(emulator.base_url))


async def test_product_purchase_and_state_changes_via_http(control: Control, client: RuStoreClient) -> None:
    await control.call("POST", f"/apps/{APP_ID}/products",
                       {"productId": "gems", "productType": "consumable", "price": 5000, "title": "Gems"}, 201)
    products = await control.call("GET", f"/apps/{APP_ID}/products", expect=200)
    assert "gems" in [p["productId"] for p in products]
    result = await control.call("POST", f"/apps/{APP_ID}/purchases", {
        "productId": "gems", "quantity": 2, "orderId": "ord-77", "developerPayload": "dp", "appUserId": "u-5",
        "purchaseType": "TWO_STEP", "outcome": "pending"}, 201)
    assert set(result) >= {"purchaseId", "invoiceId", "orderId", "productId", "productType", "purchaseType",
                           "quantity", "sandbox"}
    assert (result["orderId"], result["productType"], result["quantity"], result["sandbox"]) == (
        "ord-77", "CONSUMABLE", 2, False)
    await control.call("POST", f"/invoices/{result['invoiceId']}/pay", expect=200)
    assert await control.call("GET", "/record-shape", expect=200) == {"shape": "minimal"}
    assert await control.call("PUT", "/record-shape", {"shape": "rich"}, 200) == {"shape": "rich"}
    await control.call("PUT", "/record-shape", {"shape": "fancy"}, 400)
    payment = await client.get_payment(result["invoiceId"])
    assert (payment.status, payment.amount, payment.app_user_id) == (InvoiceStatus.PAID, 10000, "u-5")
    error = await control.call("POST", f"/invoices/{result['invoiceId']}/refund", expect=400)
    assert error["error"] == "Invoice status must be CONFIRMED"
    await control.call("POST", f"/invoices/{result['invoiceId']}/confirm", expect=200)
    view = await control.call("POST", f"/invoices/{result['invoiceId']}/refund", expect=200)
    assert view["status"] == "REFUNDED" and [h["to"] for h in view["history"]] == [
        "CREATED", "EXECUTED", "PAID", "CONFIRMED", "REFUNDED"]


async def test_sdk_rules_are_enforced(control: Control) -> None:
    await control.call("POST", f"/apps/{APP_ID}/purchases", {"productId": "no_ads", "orderId": "x"}, 201)
    duplicate = await control.call("POST", f"/apps/{APP_ID}/purchases", {"productId": "coins_100", "orderId": "x"}, 409)
    assert duplicate["errorCode"] == 40008
    again = await control.call("POST", f"/apps/{APP_ID}/purchases", {"productId": "no_ads"}, 400)
    assert again["errorCode"] == 40011
    many = await control.call("POST", f"/apps/{APP_ID}/purchases", {"productId": "no_ads", "quantity": 2}, 400)
    assert many["errorCode"] == 40016
    missing = await control.call("POST", f"/apps/{APP_ID}/purchases", {"productId": "nope"}, 404)
    assert missing["errorCode"] == 40005
    await control.call("POST", f"/apps/{APP_ID}/purchases", {"productId": "coins_100", "purchaseType": "TWO_STEP"}, 201)
    held = await control.call("POST", f"/apps/{APP_ID}/purchases", {"productId": "coins_100"}, 400)
    assert held["errorCode"] == 40010
    transition = await control.call("POST", "/invoices/100001/pay", expect=409)
    assert transition["errorCode"] == 40015


async def test_subscription_clock_and_notifications_via_http(
    control: Control, client: RuStoreClient, sink: WebhookSink, notification_keys: NotificationKeys,
    emulator: Emulator,
) -> None:
    await control.call("POST", f"/apps/{APP_ID}/products", {
        "productId": "weekly", "productType": "subscription", "price": 1000, "periodSeconds": 7 * 86400,
        "graceSeconds": 86400}, 201)
    result = await control.call("POST", f"/apps/{APP_ID}/subscriptions",
                                {"productId": "weekly", "appUserId": "u-1", "renewal": "fail"}, 201)
    clock = await control.call("POST", "/clock", {"advanceSeconds": 7 * 86400}, 200)
    assert clock["now"].startswith("2026-09-08")
    assert (await client.get_subscription("weekly", result["purchaseId"])).status is SubscriptionStatus.GRACE
    await control.call("POST", f"/subscriptions/{result['purchaseId']}/renewal-outcome", {"outcome": "success"}, 200)
    view = await control.call("POST", f"/subscriptions/{result['purchaseId']}/renew", expect=200)
    assert view["status"] == "ACTIVE" and view["charges"] == 2
    view = await control.call("POST", f"/subscriptions/{result['purchaseId']}/cancel", expect=200)
    assert view["autoRenewing"] is False and view["cancelReason"] == 0
    await control.call("POST", "/notifications/test", {"appId": APP_ID}, 200)
    await emulator.drain_notifications()
    notes = await control.call("GET", "/notifications", expect=200)
    kinds = [n["notificationType"] for n in notes]
    assert kinds.count("SUBSCRIPTION_EVENT") == 4 and kinds[-1] == "TEST_EVENT"
    assert len(decoded(sink, notification_keys)) == len(notes)
    deliveries = await control.call("GET", "/deliveries", expect=200)
    assert len(deliveries) == len(notes) and all(d["ok"] for d in deliveries)


async def test_faults_keys_tokens_and_stats_via_http(
    control: Control, emulator: Emulator, make_client: ClientFactory, clock: FakeClock
) -> None:
    client = make_client(retry_max_attempts=2)
    await control.call("POST", "/faults", {"endpoint": "catalog_products", "mode": "error", "status": 500}, 201)
    assert (await control.call("GET", "/faults", expect=200))[0]["mode"] == "error"
    with pytest.raises(RuStoreUnavailable):
        await client.list_catalog_products()
    await control.call("DELETE", "/faults/catalog_products", expect=200)
    assert len(await client.list_catalog_products()) == 2
    bad = await control.call("POST", "/faults", {"endpoint": "nope", "mode": "error"}, 400)
    assert "unknown endpoint" in bad["error"]
    assert (await control.call("POST", "/tokens/expire", expect=200))["expired"] == 1
    await client.list_catalog_products()
    stats = await control.call("GET", "/stats", expect=200)
    assert stats["calls"]["auth"] == 2 and stats["calls"]["catalog_products"] == 5  # 2 failures, 1 ok, 1 expired, 1 retried
    pair = generate_key_pair()
    await control.call("POST", "/keys", {"keyId": "9", "publicKey": pair.public_key_pem, "appIds": [APP_ID]}, 201)
    other = make_client(key_id="9", private_key_b64=pair.private_key_b64)
    assert len(await other.list_catalog_subscriptions()) == 2
    await control.call("POST", "/keys/9/disable", expect=200)
    await control.call("POST", "/tokens/expire", expect=200)
    with pytest.raises(Exception, match="disabled"):
        await other.list_catalog_subscriptions()
    state = await control.call("GET", "/state", expect=200)
    assert state["now"] == START.isoformat() and state["apps"][0]["appId"] == APP_ID


async def test_apps_can_be_added_and_clock_set_via_http(control: Control, key_pair: Any) -> None:
    await control.call("POST", "/apps", {"appId": 5, "packageName": "com.five", "keyId": "123",
                                         "publicKey": key_pair.public_key_pem}, 201)
    state = await control.call("GET", "/state", expect=200)
    assert [a["appId"] for a in state["apps"]] == [APP_ID, 5]
    now = await control.call("POST", "/clock", {"now": "2026-10-01T00:00:00+00:00"}, 200)
    assert now["now"] == "2026-10-01T00:00:00+00:00"
    backwards = await control.call("POST", "/clock", {"now": "2026-01-01T00:00:00+00:00"}, 400)
    assert "forward" in backwards["error"]


async def test_control_token_guards_the_control_api(clock: FakeClock) -> None:
    emulator = Emulator(clock=clock, control_token="s3cret", tick_interval_s=None)
    base = await emulator.start()
    try:
        async with aiohttp.ClientSession() as session:
            denied = await Control(session, base).call("GET", "/state", expect=401)
            assert "X-Emulator-Token" in denied["error"]
            await Control(session, base, "s3cret").call("GET", "/state", expect=200)
            async with session.get(base + "/public/nowhere") as response:
                assert response.status == 404 and (await response.json())["code"] == "NOT_FOUND"
    finally:
        await emulator.stop()


async def test_emulator_app_can_be_mounted_on_a_server_of_our_own(
    key_pair: Any, clock: FakeClock, make_client: ClientFactory
) -> None:
    emulator = Emulator([EmulatorApp(app_id=1, package_name="com.one", key_id="1", public_key=key_pair.public_key_pem)],
                        clock=clock, tick_interval_s=None)
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(emulator.make_app())
    server.add_sockets(sockets)
    await emulator.start_background()
    try:
        client = make_client(api_url=f"http://127.0.0.1:{sockets[0].getsockname()[1]}", key_id="1", app_id=1)
        assert await client.list_catalog_subscriptions() == []
    finally:
        await emulator.stop()
        server.stop()
        await server.close_all_connections()
