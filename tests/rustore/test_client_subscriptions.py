"""Subscriptions end to end: activation, renewal, grace, hold, termination and cancellation via the client."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rustore import (
    RuStoreClient,
    RuStoreNotFound,
    RuStoreRejected,
    SubscriptionEvent,
    SubscriptionEventType,
    SubscriptionStatus,
)
from rustore.emulator import Emulator, EmulatorProduct
from tests.rustore.conftest import APP_ID, START, NotificationKeys, WebhookSink, decoded

DAY = timedelta(days=1)


async def subscription_events(emulator: Emulator, sink: WebhookSink, keys: NotificationKeys) -> list[SubscriptionEvent]:
    await emulator.drain_notifications()
    return [n.event for n in decoded(sink, keys) if isinstance(n.event, SubscriptionEvent)]


async def test_new_subscription_is_active_with_price_in_kopecks(
    emulator: Emulator, client: RuStoreClient, sink: WebhookSink, notification_keys: NotificationKeys
) -> None:
    result = emulator.simulate_subscription(APP_ID, "premium_month", app_user_id="user-1", developer_payload="p1",
                                            order_id="sub-order-1")
    sub = await client.get_subscription("premium_month", result["purchaseId"])
    assert sub.status is SubscriptionStatus.ACTIVE and sub.entitled
    assert (sub.product_id, sub.purchase_id) == ("premium_month", result["purchaseId"])
    assert (sub.price, sub.currency) == (29900, "RUB")  # 299000000 micros
    assert (sub.start_time, sub.expiry_time) == (START, START + 30 * DAY)
    assert sub.auto_renewing is True and sub.payment_state == 1 and not sub.acknowledged
    assert (sub.developer_payload, sub.app_user_id, sub.sandbox) == ("p1", "user-1", False)
    assert sub.order_id == result["invoiceId"]
    events = await subscription_events(emulator, sink, notification_keys)
    assert [e.event_type for e in events] == [SubscriptionEventType.ACTIVATED]
    assert events[0].status_new is SubscriptionStatus.ACTIVE and events[0].purchase_id == result["purchaseId"]


async def test_acknowledge_marks_subscription_acknowledged(emulator: Emulator, client: RuStoreClient) -> None:
    result = emulator.simulate_subscription(APP_ID, "basic_month")
    await client.acknowledge_subscription("basic_month", result["purchaseId"])
    await client.acknowledge_subscription("basic_month", result["purchaseId"])
    assert (await client.get_subscription("basic_month", result["purchaseId"])).acknowledged is True


async def test_renewal_on_clock_advance_creates_a_new_invoice_per_period(
    emulator: Emulator, client: RuStoreClient, sink: WebhookSink, notification_keys: NotificationKeys
) -> None:
    result = emulator.simulate_subscription(APP_ID, "basic_month")
    emulator.advance_clock(65 * DAY)
    sub = await client.get_subscription("basic_month", result["purchaseId"])
    assert sub.status is SubscriptionStatus.ACTIVE and sub.expiry_time == START + 90 * DAY
    assert sub.order_id == f"{result['invoiceId']}..2"
    state = emulator.store.subscription(result["purchaseId"])
    assert len(state.invoice_ids) == 3
    renewal = await client.get_payment(state.invoice_ids[1])
    assert renewal.invoice_date == START + 30 * DAY and renewal.amount == 9900
    events = await subscription_events(emulator, sink, notification_keys)
    assert [e.event_type.value for e in events] == ["ACTIVATED", "RENEWED", "RENEWED"]


async def test_developer_cancel_keeps_access_until_period_end_then_closes(
    emulator: Emulator, client: RuStoreClient, sink: WebhookSink, notification_keys: NotificationKeys
) -> None:
    result = emulator.simulate_subscription(APP_ID, "basic_month")
    await client.cancel_subscription(result["purchaseId"])
    sub = await client.get_subscription("basic_month", result["purchaseId"])
    assert sub.status is SubscriptionStatus.CANCELLED and sub.entitled and sub.auto_renewing is False
    assert sub.cancel_reason == 3
    emulator.advance_clock(30 * DAY)
    sub = await client.get_subscription("basic_month", result["purchaseId"])
    assert sub.status is SubscriptionStatus.CLOSED and not sub.entitled
    assert len(emulator.store.subscription(result["purchaseId"]).invoice_ids) == 1  # never charged again
    events = await subscription_events(emulator, sink, notification_keys)
    assert [e.event_type.value for e in events] == ["ACTIVATED", "CANCELLED", "CLOSED"]
    assert events[-1].status_new is SubscriptionStatus.CLOSED and events[1].auto_renewing is False


async def test_user_cancel_is_recorded_with_user_reason(emulator: Emulator, client: RuStoreClient) -> None:
    result = emulator.simulate_subscription(APP_ID, "basic_month", sandbox=True)
    emulator.subscription_action(result["purchaseId"], "cancel")
    sub = await client.get_subscription("basic_month", result["purchaseId"], sandbox=True)
    assert (sub.status, sub.cancel_reason, sub.sandbox) == (SubscriptionStatus.CANCELLED, 0, True)


async def test_failed_renewal_goes_grace_then_hold_then_terminated(
    emulator: Emulator, client: RuStoreClient, sink: WebhookSink, notification_keys: NotificationKeys
) -> None:
    result = emulator.simulate_subscription(APP_ID, "premium_month", renewal="fail")
    purchase_id = result["purchaseId"]
    emulator.advance_clock(30 * DAY)
    sub = await client.get_subscription("premium_month", purchase_id)
    assert sub.status is SubscriptionStatus.GRACE and sub.entitled and sub.payment_state == 0
    assert sub.expiry_time == START + 33 * DAY
    emulator.advance_clock(3 * DAY)
    sub = await client.get_subscription("premium_month", purchase_id)
    assert sub.status is SubscriptionStatus.PAUSED and not sub.entitled
    emulator.advance_clock(7 * DAY)
    sub = await client.get_subscription("premium_month", purchase_id)
    assert sub.status is SubscriptionStatus.TERMINATED and sub.auto_renewing is False and sub.cancel_reason == 1
    events = await subscription_events(emulator, sink, notification_keys)
    assert [(e.event_type.value, e.status_new.value if e.status_new else None, e.period_new) for e in events] == [
        ("ACTIVATED", "ACTIVE", "MAIN"), ("PAYMENT_FAILED", "ACTIVE", "GRACE"),
        ("PAYMENT_FAILED", "PAUSED", "HOLD"), ("CLOSED", "TERMINATED", "HOLD")]


async def test_payment_in_grace_keeps_the_original_schedule(emulator: Emulator, client: RuStoreClient) -> None:
    result = emulator.simulate_subscription(APP_ID, "premium_month", renewal="fail")
    emulator.advance_clock(30 * DAY)
    emulator.subscription_action(result["purchaseId"], "renewal-outcome", outcome="success")
    emulator.advance_clock(DAY)  # the daily retry succeeds
    sub = await client.get_subscription("premium_month", result["purchaseId"])
    assert sub.status is SubscriptionStatus.ACTIVE and sub.expiry_time == START + 60 * DAY


async def test_payment_in_hold_resumes_with_a_new_period_from_payment(
    emulator: Emulator, client: RuStoreClient, sink: WebhookSink, notification_keys: NotificationKeys
) -> None:
    result = emulator.simulate_subscription(APP_ID, "premium_month", renewal="fail")
    emulator.advance_clock(34 * DAY)
    assert (await client.get_subscription("premium_month", result["purchaseId"])).status is SubscriptionStatus.PAUSED
    emulator.subscription_action(result["purchaseId"], "renewal-outcome", outcome="success")
    emulator.subscription_action(result["purchaseId"], "renew")
    sub = await client.get_subscription("premium_month", result["purchaseId"])
    assert sub.status is SubscriptionStatus.ACTIVE and sub.expiry_time == START + 64 * DAY
    events = await subscription_events(emulator, sink, notification_keys)
    assert events[-1].event_type is SubscriptionEventType.RESUMED


async def test_failed_renewal_without_grace_or_hold_terminates(emulator: Emulator, client: RuStoreClient) -> None:
    result = emulator.simulate_subscription(APP_ID, "basic_month", renewal="fail")
    emulator.advance_clock(30 * DAY)
    sub = await client.get_subscription("basic_month", result["purchaseId"])
    assert sub.status is SubscriptionStatus.TERMINATED


async def test_sandbox_subscriptions_renew_every_ten_minutes_and_close_after_twelve_charges(
    emulator: Emulator, client: RuStoreClient, sink: WebhookSink, notification_keys: NotificationKeys
) -> None:
    result = emulator.simulate_subscription(APP_ID, "basic_month", sandbox=True)
    emulator.advance_clock(timedelta(minutes=25))
    sub = await client.get_subscription("basic_month", result["purchaseId"], sandbox=True)
    assert sub.expiry_time == START + timedelta(minutes=30) and sub.sandbox
    emulator.advance_clock(timedelta(hours=3))
    sub = await client.get_subscription("basic_month", result["purchaseId"], sandbox=True)
    assert sub.status is SubscriptionStatus.CLOSED
    assert emulator.store.subscription(result["purchaseId"]).charges == 12
    await emulator.drain_notifications()
    assert all(n.sandbox for n in decoded(sink, notification_keys))
    assert {r["env"] for r in sink.received} == {"sandbox"}


async def test_pending_subscription_activates_when_its_invoice_is_paid(
    emulator: Emulator, client: RuStoreClient
) -> None:
    result = emulator.simulate_subscription(APP_ID, "basic_month", outcome="pending")
    sub = await client.get_subscription("basic_month", result["purchaseId"])
    assert sub.status is SubscriptionStatus.PENDING
    emulator.advance_clock(DAY)
    emulator.invoice_action(int(result["invoiceId"]), "pay")
    sub = await client.get_subscription("basic_month", result["purchaseId"])
    assert sub.status is SubscriptionStatus.ACTIVE and sub.start_time == START + DAY


async def test_unknown_subscription_is_not_found(emulator: Emulator, client: RuStoreClient) -> None:
    with pytest.raises(RuStoreNotFound):
        await client.get_subscription("basic_month", "3aa0c7bd-964e-4562-b218-fe365adb4ae3")
    with pytest.raises(RuStoreNotFound, match="Subscription not found for given purchaseId"):
        await client.cancel_subscription("3aa0c7bd-964e-4562-b218-fe365adb4ae3")
    with pytest.raises(RuStoreNotFound, match="Purchase not found"):
        await client.acknowledge_subscription("basic_month", "3aa0c7bd-964e-4562-b218-fe365adb4ae3")


async def test_cancelling_a_closed_subscription_is_rejected(emulator: Emulator, client: RuStoreClient) -> None:
    result = emulator.simulate_subscription(APP_ID, "basic_month", renewal="fail")
    emulator.advance_clock(31 * DAY)
    with pytest.raises(RuStoreRejected):
        await client.cancel_subscription(result["purchaseId"])


async def test_legacy_subscription_lookups_by_token(emulator: Emulator, client: RuStoreClient) -> None:
    result = emulator.simulate_subscription(APP_ID, "premium_month", sdk="billing")
    token = result["subscriptionToken"]
    v3 = await client.get_legacy_subscription(token, "premium_month")
    assert v3.status is SubscriptionStatus.ACTIVE and v3.price == 29900 and v3.subscription_token == token
    v1 = await client.get_legacy_subscription(token)
    assert v1.status is SubscriptionStatus.ACTIVE and v1.product_id == "premium_month" and v1.price == 29900
    emulator.subscription_action(result["purchaseId"], "cancel")
    assert (await client.get_legacy_subscription(token)).status is SubscriptionStatus.CANCELLED
    with pytest.raises(RuStoreNotFound):
        await client.get_subscription("premium_month", result["purchaseId"])  # V4 is Pay SDK only


async def test_free_trial_is_reported_as_active_with_trial_payment_state(
    emulator: Emulator, client: RuStoreClient
) -> None:
    emulator.add_product(APP_ID, EmulatorProduct("trial_month", "subscription", 19900, period=30 * DAY, trial=7 * DAY))
    result = emulator.simulate_subscription(APP_ID, "trial_month")
    assert (await client.get_payment(result["invoiceId"])).amount == 0
    sub = await client.get_subscription("trial_month", result["purchaseId"])
    assert (sub.status, sub.payment_state, sub.expiry_time) == (SubscriptionStatus.ACTIVE, 2, START + 7 * DAY)
    emulator.advance_clock(7 * DAY)
    sub = await client.get_subscription("trial_month", result["purchaseId"])
    assert (sub.payment_state, sub.expiry_time) == (1, START + 37 * DAY)
