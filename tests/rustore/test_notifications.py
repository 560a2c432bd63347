"""Notification decoding: payloads the emulator delivered, and hand-built broken or hostile ones."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rustore import (
    InvoiceStatus,
    InvoiceStatusEvent,
    NotificationAppIdError,
    NotificationBase64Error,
    NotificationDecoder,
    NotificationDecryptError,
    NotificationEnvelopeError,
    NotificationKeyMismatchError,
    NotificationMissingKeyError,
    NotificationPlaintextError,
    RuStoreConfigError,
    SubscriptionEvent,
    SubscriptionEventType,
    SubscriptionStatus,
    TestEvent,
    UnknownEvent,
    decode_notification,
)
from rustore.emulator import Emulator
from tests.rustore.conftest import APP_ID, START, NotificationKeys, WebhookSink


def seal(plaintext: bytes, key_b64: str) -> str:
    """Hand-built RuStore payload: Base64(IV || ciphertext || tag), per API.md §5.3."""
    iv = os.urandom(12)
    return base64.b64encode(iv + AESGCM(base64.b64decode(key_b64)).encrypt(iv, plaintext, None)).decode()


def body(payload: str, ident: str = "n-1") -> bytes:
    return json.dumps({"id": ident, "timestamp": "2025-11-18T10:38:58.619Z", "payload": payload}).encode()


def content(kind: str, data: Any, app_id: Any = APP_ID) -> bytes:
    return json.dumps({"app_id": app_id, "notification_type": kind, "data": json.dumps(data)}).encode()


async def delivered(emulator: Emulator, sink: WebhookSink) -> list[bytes]:
    await emulator.drain_notifications()
    return sink.raw


async def test_emulator_invoice_notifications_decode_to_typed_events(
    emulator: Emulator, sink: WebhookSink, notification_keys: NotificationKeys
) -> None:
    result = emulator.simulate_purchase(APP_ID, "coins_100", order_id="o-9")
    decoder = NotificationDecoder(notification_keys.real, notification_keys.sandbox, expected_app_id=APP_ID)
    notes = [decoder.decode(raw) for raw in await delivered(emulator, sink)]
    assert [n.notification_type for n in notes] == ["INVOICE_STATUS", "INVOICE_STATUS"]
    event = notes[1].event
    assert isinstance(event, InvoiceStatusEvent)
    assert (event.status_old, event.status_new) == (InvoiceStatus.EXECUTED, InvoiceStatus.CONFIRMED)
    assert (event.invoice_id, event.purchase_id, event.order_id) == (result["invoiceId"], result["purchaseId"], "o-9")
    assert event.product_code == "coins_100" and event.purchase_token == result["subscriptionToken"]
    assert event.change_status_time == START and notes[1].timestamp == START
    assert notes[1].app_id == APP_ID and not notes[1].sandbox and notes[0].id != notes[1].id


async def test_sandbox_notifications_use_the_sandbox_key_and_url(
    emulator: Emulator, sink: WebhookSink, notification_keys: NotificationKeys
) -> None:
    emulator.simulate_subscription(APP_ID, "basic_month", sandbox=True, developer_payload="dp")
    raws = await delivered(emulator, sink)
    assert {r["env"] for r in sink.received} == {"sandbox"}
    with pytest.raises(NotificationDecryptError):
        decode_notification(raws[0], key_b64=notification_keys.real)
    notes = [decode_notification(r, key_b64=notification_keys.real, sandbox_key_b64=notification_keys.sandbox)
             for r in raws]
    assert [n.notification_type for n in notes] == ["INVOICE_STATUS_SANDBOX"] * 2 + ["SUBSCRIPTION_EVENT_SANDBOX"]
    event = notes[-1].event
    assert isinstance(event, SubscriptionEvent) and notes[-1].sandbox
    assert event.event_type is SubscriptionEventType.ACTIVATED and event.status_new is SubscriptionStatus.ACTIVE
    assert event.auto_renewing is True and event.developer_payload == "dp" and event.event_time == START


async def test_test_event_from_emulator_decodes(
    emulator: Emulator, sink: WebhookSink, notification_keys: NotificationKeys
) -> None:
    emulator.send_test_notification(APP_ID)
    note = decode_notification((await delivered(emulator, sink))[0], key_b64=notification_keys.real)
    assert note.notification_type == "TEST_EVENT" and note.event == TestEvent({"test": "TEST"})


async def test_lowercase_statuses_in_notifications_are_normalised(
    emulator: Emulator, sink: WebhookSink, notification_keys: NotificationKeys
) -> None:
    emulator.notifier.status_case = "lower"
    emulator.simulate_purchase(APP_ID, "coins_100", purchase_type="TWO_STEP")
    notes = [decode_notification(r, key_b64=notification_keys.real) for r in await delivered(emulator, sink)]
    assert json.loads(notes[-1].raw["data"])["status_new"] == "paid"
    assert notes[-1].event.status_new is InvoiceStatus.PAID  # type: ignore[union-attr]


async def test_tampered_ciphertext_is_rejected(
    emulator: Emulator, sink: WebhookSink, notification_keys: NotificationKeys
) -> None:
    emulator.send_test_notification(APP_ID)
    envelope = json.loads((await delivered(emulator, sink))[0])
    blob = bytearray(base64.b64decode(envelope["payload"]))
    blob[20] ^= 0x01
    envelope["payload"] = base64.b64encode(bytes(blob)).decode()
    with pytest.raises(NotificationDecryptError, match="tampered"):
        decode_notification(json.dumps(envelope), key_b64=notification_keys.real)


@pytest.mark.parametrize("tag_byte", [-16, -1])
def test_one_flipped_gcm_tag_byte_is_rejected_as_failed_authentication(
    tag_byte: int, notification_keys: NotificationKeys
) -> None:
    # Ciphertext untouched: without the tag check the plaintext would decrypt intact and be
    # accepted, so only the authentication failure (not a parsing error) can reject this.
    payload = seal(content("TEST_EVENT", {"test": "TEST"}), notification_keys.real)
    assert decode_notification(body(payload), key_b64=notification_keys.real).notification_type == "TEST_EVENT"
    blob = bytearray(base64.b64decode(payload))
    blob[tag_byte] ^= 0x01
    with pytest.raises(NotificationDecryptError, match="failed AES-GCM authentication") as caught:
        decode_notification(body(base64.b64encode(bytes(blob)).decode()), key_b64=notification_keys.real)
    assert type(caught.value) is NotificationDecryptError


def test_wrong_key_is_rejected_like_tampering(notification_keys: NotificationKeys) -> None:
    payload = seal(content("TEST_EVENT", {"test": "TEST"}), NotificationKeys().real)
    with pytest.raises(NotificationDecryptError, match="another key"):
        decode_notification(body(payload), key_b64=notification_keys.real)


def test_hand_built_documented_example_decodes(notification_keys: NotificationKeys) -> None:
    data = {"change_status_time": "1970-01-01T00:00:00Z", "product_code": "test_test", "status_new": "paid",
            "status_old": "executed", "purchase_token": "111.123", "invoice_id": "123",
            "order_id": "123e4567e89b-12d3-a456-4266-55440000", "purchase_id": "123e4567e89b-12d3-a456-4266-55440000"}
    note = decode_notification(body(seal(content("INVOICE_STATUS", data, 12345), notification_keys.real)),
                               key_b64=notification_keys.real, expected_app_id=12345)
    event = note.event
    assert isinstance(event, InvoiceStatusEvent)
    assert (event.status_new, event.status_old, event.purchase_token) == (
        InvoiceStatus.PAID, InvoiceStatus.EXECUTED, "111.123")
    assert event.change_status_time is not None and event.change_status_time.year == 1970


def test_subscription_event_with_unknown_values_and_fields_is_tolerated(notification_keys: NotificationKeys) -> None:
    data = {"purchase_id": "p", "subscription_event_type": "UPGRADED", "status_new": "FROZEN", "period_new": "PROMO",
            "autorenewing": "false", "brand_new_field": 1}
    note = decode_notification(body(seal(content("SUBSCRIPTION_EVENT", data), notification_keys.real)),
                               key_b64=notification_keys.real)
    event = note.event
    assert isinstance(event, SubscriptionEvent)
    assert event.event_type is SubscriptionEventType.UNKNOWN and event.status_new is SubscriptionStatus.UNKNOWN
    assert event.auto_renewing is False and event.data["brand_new_field"] == 1


def test_unknown_notification_type_is_reported_not_crashed_on(notification_keys: NotificationKeys) -> None:
    note = decode_notification(body(seal(content("REFUND_REQUEST", [1, 2]), notification_keys.real)),
                               key_b64=notification_keys.real)
    assert note.event == UnknownEvent("REFUND_REQUEST", [1, 2])


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'{"id": "1"}', b'{"payload": "AAAA"}', b"\xff\xfe"])
def test_malformed_envelope_is_rejected(raw: bytes, notification_keys: NotificationKeys) -> None:
    with pytest.raises(NotificationEnvelopeError):
        decode_notification(raw, key_b64=notification_keys.real)


def test_bad_base64_is_rejected(notification_keys: NotificationKeys) -> None:
    with pytest.raises(NotificationBase64Error):
        decode_notification(body("%%%not base64%%%"), key_b64=notification_keys.real)
    # Strict alphabet: a lenient decoder would drop the stray characters and accept the rest.
    valid = seal(content("TEST_EVENT", {"test": "TEST"}), notification_keys.real)
    with pytest.raises(NotificationBase64Error):
        decode_notification(body(valid[:8] + "!*" + valid[8:]), key_b64=notification_keys.real)
    with pytest.raises(NotificationDecryptError, match="shorter"):
        decode_notification(body(base64.b64encode(b"short").decode()), key_b64=notification_keys.real)


def test_plaintext_that_is_not_json_is_rejected(notification_keys: NotificationKeys) -> None:
    with pytest.raises(NotificationPlaintextError, match="not JSON"):
        decode_notification(body(seal(b"hello", notification_keys.real)), key_b64=notification_keys.real)
    bad_data = json.dumps({"app_id": APP_ID, "notification_type": "INVOICE_STATUS", "data": "{oops"}).encode()
    with pytest.raises(NotificationPlaintextError, match="`data` is not a JSON string"):
        decode_notification(body(seal(bad_data, notification_keys.real)), key_b64=notification_keys.real)
    with pytest.raises(NotificationPlaintextError, match="not JSON"):  # IV and tag only: an empty plaintext
        decode_notification(body(seal(b"", notification_keys.real)), key_b64=notification_keys.real)
    for not_an_object in (b"[1]", b'"text"', b"7"):
        with pytest.raises(NotificationPlaintextError, match="decrypted notification is not a JSON object"):
            decode_notification(body(seal(not_an_object, notification_keys.real)), key_b64=notification_keys.real)


def test_wrong_app_id_is_rejected(notification_keys: NotificationKeys) -> None:
    payload = seal(content("TEST_EVENT", {"test": "TEST"}, app_id=1), notification_keys.real)
    with pytest.raises(NotificationAppIdError):
        decode_notification(body(payload), key_b64=notification_keys.real, expected_app_id=APP_ID)
    assert decode_notification(body(payload), key_b64=notification_keys.real).app_id == 1


def test_sandbox_key_cannot_forge_a_real_payment_notification(notification_keys: NotificationKeys) -> None:
    payload = seal(content("INVOICE_STATUS", {"invoice_id": "1", "status_new": "CONFIRMED"}), notification_keys.sandbox)
    with pytest.raises(NotificationKeyMismatchError, match="^INVOICE_STATUS notification was encrypted with the sandbox"):
        decode_notification(body(payload), key_b64=notification_keys.real, sandbox_key_b64=notification_keys.sandbox)


def test_missing_keys_are_reported(notification_keys: NotificationKeys) -> None:
    payload = seal(content("TEST_EVENT_SANDBOX", {"test": "TEST"}), notification_keys.sandbox)
    with pytest.raises(NotificationMissingKeyError):
        decode_notification(body(payload), key_b64=None)
    with pytest.raises(NotificationDecryptError, match="RUSTORE_SANDBOX_NOTIFICATION_KEY"):
        decode_notification(body(payload), key_b64=notification_keys.real)


@pytest.mark.parametrize("key", ["not base64!", base64.b64encode(b"16-byte-aes-key!").decode()])
def test_unusable_notification_key_is_a_config_error(key: str) -> None:
    with pytest.raises(RuStoreConfigError):
        NotificationDecoder(key)


def test_data_sent_as_an_object_instead_of_a_json_string_decodes_the_same(notification_keys: NotificationKeys) -> None:
    data = {"invoice_id": 5, "purchase_id": "p-5", "product_code": "coins_100", "status_new": "CONFIRMED",
            "change_status_time": "2025-11-18T10:38:58Z"}
    inline = json.dumps({"app_id": APP_ID, "notification_type": "INVOICE_STATUS", "data": data}).encode()
    for plaintext in (inline, content("INVOICE_STATUS", data)):
        event = decode_notification(body(seal(plaintext, notification_keys.real)), key_b64=notification_keys.real).event
        assert isinstance(event, InvoiceStatusEvent)
        assert (event.invoice_id, event.purchase_id, event.status_new) == ("5", "p-5", InvoiceStatus.CONFIRMED)


@pytest.mark.parametrize("kind", ["INVOICE_STATUS", "SUBSCRIPTION_EVENT", "TEST_EVENT"])
@pytest.mark.parametrize("data", [[1, 2], "text", 7])
def test_known_notifications_whose_data_is_not_an_object_are_refused(
    kind: str, data: Any, notification_keys: NotificationKeys
) -> None:
    payload = seal(content(kind, data), notification_keys.real)
    with pytest.raises(NotificationPlaintextError, match="not a JSON object"):
        decode_notification(body(payload), key_b64=notification_keys.real)


def test_a_notification_key_with_stray_characters_is_refused_not_repaired(notification_keys: NotificationKeys) -> None:
    key = notification_keys.real
    NotificationDecoder(key[:4] + "\n " + key[4:])  # line breaks and spaces, as copied from a console, are fine
    with pytest.raises(RuStoreConfigError, match="is not Base64"):
        NotificationDecoder(key[:4] + "!*" + key[4:])
