"""One-time purchases end to end: the emulator's state machine read and driven through the client."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from rustore import InvoiceStatus, RuStoreClient, RuStoreNotFound, RuStoreRejected
from rustore.emulator import Emulator
from tests.rustore.conftest import APP_ID, START, ClientFactory, NotificationKeys, WebhookSink, decoded, invoice_statuses


async def test_get_payment_reads_rustores_published_record(emulator: Emulator, client: RuStoreClient) -> None:
    result = emulator.simulate_purchase(APP_ID, "coins_100", quantity=3, order_id="order-1",
                                        developer_payload="level=7", app_user_id="user-42", purchase_type="TWO_STEP")
    payment = await client.get_payment(result["invoiceId"])
    assert payment.raw["invoiceStatus"] == "paid" and payment.status is InvoiceStatus.PAID  # lowercase in the schema
    assert (payment.order_id, payment.product_id, payment.app_id) == ("order-1", "coins_100", APP_ID)
    assert payment.raw["applicationCode"] == APP_ID and "appId" not in payment.raw
    assert (payment.purchase_id, payment.app_user_id, payment.quantity) == (None, None, None)  # not in the schema
    assert payment.developer_payload == "level=7" and payment.amount == 29700


async def test_the_purchase_list_by_app_user_id_gives_purchase_ids(emulator: Emulator, client: RuStoreClient) -> None:
    mine = emulator.simulate_purchase(APP_ID, "coins_100", app_user_id="user-42")
    emulator.simulate_purchase(APP_ID, "coins_100", app_user_id="someone-else")
    emulator.simulate_purchase(APP_ID, "coins_100")
    listed = await client.list_user_purchases("user-42")
    assert [(p.invoice_id, p.purchase_id, p.product_id) for p in listed] == [
        (mine["invoiceId"], mine["purchaseId"], "coins_100")]
    assert await client.list_user_purchases("nobody") == []
    emulator.set_fault("purchases_by_user", "error", status=404)
    assert await client.list_user_purchases("user-42") == []  # 404: no evidence, not an error


async def test_get_payment_returns_normalised_value_object(emulator: Emulator, client: RuStoreClient) -> None:
    emulator.set_record_shape("rich")
    result = emulator.simulate_purchase(APP_ID, "coins_100", quantity=3, order_id="order-1",
                                        developer_payload="level=7", app_user_id="user-42")
    payment = await client.get_payment(result["invoiceId"])
    assert payment.invoice_id == result["invoiceId"]
    assert payment.purchase_id == result["purchaseId"]
    assert (payment.order_id, payment.product_id, payment.app_id) == ("order-1", "coins_100", APP_ID)
    assert payment.status is InvoiceStatus.CONFIRMED and payment.status_raw == "CONFIRMED"
    assert (payment.amount, payment.currency, payment.quantity) == (29700, "RUB", 3)
    assert (payment.developer_payload, payment.app_user_id) == ("level=7", "user-42")
    assert payment.invoice_date == START and payment.invoice_date.tzinfo is UTC
    assert payment.payment_date == START and payment.refund_date is None
    assert payment.sandbox is False and payment.raw["invoiceId"] == int(result["invoiceId"])


async def test_sandbox_purchases_are_only_visible_on_sandbox_paths(emulator: Emulator, client: RuStoreClient) -> None:
    result = emulator.simulate_purchase(APP_ID, "coins_100", sandbox=True)
    assert result["sandbox"] is True
    payment = await client.get_payment(result["invoiceId"], sandbox=True)
    assert payment.sandbox is True and payment.status is InvoiceStatus.CONFIRMED
    with pytest.raises(RuStoreNotFound):
        await client.get_payment(result["invoiceId"])


async def test_unknown_invoice_is_not_found_without_retry(emulator: Emulator, client: RuStoreClient) -> None:
    with pytest.raises(RuStoreNotFound) as info:
        await client.get_payment(987654)
    assert info.value.http_status == 404
    assert emulator.stats["payment_v2"] == 1


async def test_two_step_purchase_waits_in_paid_until_confirmed(
    emulator: Emulator, client: RuStoreClient, sink: WebhookSink, notification_keys: NotificationKeys
) -> None:
    result = emulator.simulate_purchase(APP_ID, "coins_100", purchase_type="TWO_STEP")
    assert result["invoiceStatus"] == "PAID"
    assert (await client.get_payment(result["invoiceId"])).status is InvoiceStatus.PAID
    await client.confirm_purchase(result["purchaseId"])
    assert (await client.get_payment(result["invoiceId"])).status is InvoiceStatus.CONFIRMED
    await emulator.drain_notifications()
    assert invoice_statuses(decoded(sink, notification_keys), result["invoiceId"]) == ["EXECUTED", "PAID", "CONFIRMED"]


async def test_cancelling_a_two_step_purchase_reverses_it(emulator: Emulator, client: RuStoreClient) -> None:
    result = emulator.simulate_purchase(APP_ID, "coins_100", purchase_type="TWO_STEP", sandbox=True)
    await client.cancel_purchase(result["purchaseId"], sandbox=True)
    assert (await client.get_payment(result["invoiceId"], sandbox=True)).status is InvoiceStatus.REVERSED


async def test_confirm_or_cancel_outside_paid_is_rejected_with_rustore_message(
    emulator: Emulator, client: RuStoreClient
) -> None:
    result = emulator.simulate_purchase(APP_ID, "coins_100")
    for action in (client.confirm_purchase, client.cancel_purchase):
        with pytest.raises(RuStoreRejected) as info:
            await action(result["purchaseId"])
        assert info.value.message == "Purchase status must be PAID" and info.value.http_status == 400
    assert emulator.stats["purchase_confirm"] == 1  # a refusal is not retried


async def test_unconfirmed_hold_is_reversed_after_the_timeout(
    emulator: Emulator, client: RuStoreClient, sink: WebhookSink, notification_keys: NotificationKeys
) -> None:
    result = emulator.simulate_purchase(APP_ID, "coins_100", purchase_type="TWO_STEP")
    emulator.advance_clock(timedelta(hours=5, minutes=59))
    assert (await client.get_payment(result["invoiceId"])).status is InvoiceStatus.PAID
    emulator.advance_clock(timedelta(minutes=2))
    assert (await client.get_payment(result["invoiceId"])).status is InvoiceStatus.REVERSED
    await emulator.drain_notifications()
    events = [n.event for n in decoded(sink, notification_keys)]
    reversed_event = events[-1]
    assert reversed_event.status_new is InvoiceStatus.REVERSED  # type: ignore[union-attr]
    assert reversed_event.change_status_time == START + timedelta(hours=6)  # type: ignore[union-attr]


async def test_refund_moves_confirmed_payment_to_refunded_once(emulator: Emulator, client: RuStoreClient) -> None:
    result = emulator.simulate_purchase(APP_ID, "no_ads")
    emulator.advance_clock(timedelta(days=2))
    await client.refund_payment(result["invoiceId"])
    payment = await client.get_payment(result["invoiceId"])
    assert payment.status is InvoiceStatus.REFUNDED and payment.refund_date == START + timedelta(days=2)
    with pytest.raises(RuStoreRejected, match="Invoice has already been refunded"):
        await client.refund_payment(result["invoiceId"])


async def test_refund_of_unfinished_payment_is_rejected(emulator: Emulator, client: RuStoreClient) -> None:
    result = emulator.simulate_purchase(APP_ID, "coins_100", purchase_type="TWO_STEP")
    with pytest.raises(RuStoreRejected, match="Invoice status must be CONFIRMED"):
        await client.refund_payment(result["invoiceId"])


async def test_pending_purchase_stays_created_until_paid(emulator: Emulator, client: RuStoreClient) -> None:
    result = emulator.simulate_purchase(APP_ID, "coins_100", outcome="pending")
    payment = await client.get_payment(result["invoiceId"])
    assert payment.status is InvoiceStatus.CREATED and payment.payment_date is None
    emulator.invoice_action(int(result["invoiceId"]), "execute")
    assert (await client.get_payment(result["invoiceId"])).status is InvoiceStatus.EXECUTED
    emulator.invoice_action(int(result["invoiceId"]), "pay")
    assert (await client.get_payment(result["invoiceId"])).status is InvoiceStatus.CONFIRMED


@pytest.mark.parametrize("outcome, status", [("rejected", InvoiceStatus.REJECTED),
                                             ("cancelled", InvoiceStatus.CANCELLED),
                                             ("expired", InvoiceStatus.EXPIRED)])
async def test_failed_purchases_end_in_their_status(
    emulator: Emulator, client: RuStoreClient, outcome: str, status: InvoiceStatus
) -> None:
    result = emulator.simulate_purchase(APP_ID, "coins_100", outcome=outcome)
    assert (await client.get_payment(result["invoiceId"])).status is status


async def test_list_payments_follows_pages_and_filters_statuses(emulator: Emulator, client: RuStoreClient) -> None:
    confirmed = [emulator.simulate_purchase(APP_ID, "coins_100")["invoiceId"] for _ in range(5)]
    emulator.simulate_purchase(APP_ID, "coins_100", purchase_type="TWO_STEP")
    emulator.simulate_purchase(APP_ID, "coins_100", sandbox=True)
    found = [p.invoice_id async for p in client.list_payments(START.date(), [InvoiceStatus.CONFIRMED], page_size=2)]
    assert found == confirmed
    assert emulator.stats["payments_list"] == 3
    page = await client.list_payments_page(START.date(), ["paid", "CONFIRMED"], page_size=10)
    assert page.total_elements == 6 and page.total_pages == 1
    sandbox = [p async for p in client.list_payments(START.date(), ["CONFIRMED"], sandbox=True)]
    assert len(sandbox) == 1 and sandbox[0].sandbox


async def test_list_payments_sends_uppercase_statuses_when_configured(
    emulator: Emulator, make_client: ClientFactory
) -> None:
    emulator.simulate_purchase(APP_ID, "coins_100")
    client = make_client(invoice_status_case="upper")
    assert len([p async for p in client.list_payments(START.date(), ["confirmed"])]) == 1


async def test_lowercase_legacy_statuses_are_normalised(emulator: Emulator, client: RuStoreClient) -> None:
    result = emulator.simulate_purchase(APP_ID, "coins_100", purchase_type="TWO_STEP")
    emulator.set_fault("payment_v2", "lowercase")
    payment = await client.get_payment(result["invoiceId"])
    assert payment.status_raw == "paid" and payment.status is InvoiceStatus.PAID


async def test_legacy_payment_by_purchase_token_parses_snake_case_body(
    emulator: Emulator, client: RuStoreClient
) -> None:
    result = emulator.simulate_purchase(APP_ID, "no_ads", sdk="billing", order_id="legacy-1", quantity=1)
    payment = await client.get_legacy_payment(result["subscriptionToken"])
    assert payment.invoice_id == result["invoiceId"] and payment.purchase_token == result["subscriptionToken"]
    assert payment.status is InvoiceStatus.CONFIRMED and payment.status_raw == "confirmed"
    assert (payment.product_id, payment.amount, payment.order_id, payment.quantity) == ("no_ads", 14900, "legacy-1", 1)
    assert payment.invoice_date == START and payment.app_id == APP_ID
    with pytest.raises(RuStoreNotFound):
        await client.get_legacy_payment(result["subscriptionToken"], sandbox=True)
