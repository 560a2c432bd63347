"""Decode RuStore server notifications (API.md §5) into typed events.

Body `{id, timestamp, payload}`; payload = Base64(IV[12] || ciphertext || tag[16]), AES-256-GCM,
no AAD, key = Base64-decoded console key. The plaintext is JSON whose `data` is itself a JSON string.

Choices where API.md is UNCONFIRMED:
* The envelope does not say which environment sent it, so the real key is tried first and the
  sandbox key second. A payload that only the sandbox key opens must carry a `*_SANDBOX` type;
  otherwise it is refused (`NotificationKeyMismatchError`): sandbox keys are handed to more people
  (release managers) and must not be able to forge real-payment notifications.
* GCM cannot tell a wrong key from a tampered payload: both are `NotificationDecryptError`.
* Subscription events follow the third-party shape of §5.6; unknown fields are kept in `data`,
  unknown values map to UNKNOWN enums. `data` given as an object instead of a string is accepted.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core import strict_json
from rustore.errors import (
    NotificationAppIdError,
    NotificationBase64Error,
    NotificationDecryptError,
    NotificationEnvelopeError,
    NotificationKeyMismatchError,
    NotificationMissingKeyError,
    NotificationPlaintextError,
    RuStoreConfigError,
)
from rustore.models import InvoiceStatus, SubscriptionEventType, SubscriptionStatus
from rustore.values import parse_time, to_bool, to_int, to_str

IV_LENGTH = 12
TAG_LENGTH = 16
_KNOWN = {"INVOICE_STATUS", "SUBSCRIPTION_EVENT", "TEST_EVENT"}


@dataclass(frozen=True, slots=True)
class InvoiceStatusEvent:
    """INVOICE_STATUS(_SANDBOX): a payment changed status; re-query P3 by `invoice_id` for the truth."""

    invoice_id: str | None
    purchase_id: str | None
    order_id: str | None
    product_code: str | None
    status_new: InvoiceStatus
    status_old: InvoiceStatus | None
    change_status_time: datetime | None
    purchase_token: str | None
    data: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class SubscriptionEvent:
    """SUBSCRIPTION_EVENT(_SANDBOX): a subscription changed; re-query S5 by `purchase_id`."""

    purchase_id: str | None
    product_code: str | None
    event_type: SubscriptionEventType
    status_new: SubscriptionStatus | None
    status_old: SubscriptionStatus | None
    period_new: str | None
    period_old: str | None
    auto_renewing: bool | None
    event_time: datetime | None
    invoice_id: str | None
    order_id: str | None
    developer_payload: str | None
    data: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class TestEvent:
    """TEST_EVENT(_SANDBOX): the console's connectivity check."""

    __test__ = False  # not a pytest test class despite the name

    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """A notification type this package does not know yet; kept so it can be stored and inspected."""

    type: str
    data: Any = None


Event = InvoiceStatusEvent | SubscriptionEvent | TestEvent | UnknownEvent


@dataclass(frozen=True, slots=True)
class Notification:
    """A decrypted, authenticated notification."""

    id: str
    timestamp: datetime | None
    notification_type: str
    app_id: int | None
    sandbox: bool
    event: Event
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def _parse_key(key_b64: str | None, name: str) -> AESGCM | None:
    if not key_b64:
        return None
    try:
        key = base64.b64decode("".join(key_b64.split()), validate=True)
    except (binascii.Error, ValueError):
        raise RuStoreConfigError(f"{name} is not Base64") from None
    if len(key) != 32:
        raise RuStoreConfigError(f"{name} must decode to 32 bytes (AES-256), got {len(key)}")
    return AESGCM(key)


class NotificationDecoder:
    """Holds the parsed keys and decodes webhook bodies."""

    def __init__(
        self, key_b64: str | None, sandbox_key_b64: str | None = None, *, expected_app_id: int | None = None
    ) -> None:
        self._real = _parse_key(key_b64, "RUSTORE_NOTIFICATION_KEY")
        self._sandbox = _parse_key(sandbox_key_b64, "RUSTORE_SANDBOX_NOTIFICATION_KEY")
        self._expected_app_id = expected_app_id

    def decode(self, body: bytes | str) -> Notification:
        """Authenticate, decrypt and type one webhook body, or raise a `NotificationError` subclass."""
        envelope = _envelope(body)
        try:
            blob = base64.b64decode(envelope["payload"], validate=True)
        except (binascii.Error, ValueError):
            raise NotificationBase64Error("notification payload is not standard Base64") from None
        if len(blob) < IV_LENGTH + TAG_LENGTH:
            raise NotificationDecryptError("notification payload is shorter than IV + GCM tag")
        plaintext, by_sandbox_key = self._decrypt(blob)
        try:
            outer = strict_json.loads(plaintext)
        except strict_json.StrictJSONError:
            raise NotificationPlaintextError("decrypted notification is not JSON") from None
        if not isinstance(outer, dict):
            raise NotificationPlaintextError("decrypted notification is not a JSON object")
        kind = to_str(outer.get("notification_type")) or ""
        sandbox = kind.upper().endswith("_SANDBOX")
        if by_sandbox_key and not sandbox:
            raise NotificationKeyMismatchError(f"{kind or 'untyped'} notification was encrypted with the sandbox key")
        app_id = to_int(outer.get("app_id"))
        if self._expected_app_id is not None and app_id != self._expected_app_id:
            raise NotificationAppIdError(f"notification is for app_id {outer.get('app_id')!r}, not ours")
        return Notification(
            id=envelope["id"],
            timestamp=parse_time(envelope.get("timestamp")),
            notification_type=kind,
            app_id=app_id,
            sandbox=sandbox,
            event=_event(kind, _data(outer.get("data"))),
            raw=outer,
        )

    def _decrypt(self, blob: bytes) -> tuple[bytes, bool]:
        iv, sealed = blob[:IV_LENGTH], blob[IV_LENGTH:]
        if self._real is None and self._sandbox is None:
            raise NotificationMissingKeyError("no notification key configured (RUSTORE_NOTIFICATION_KEY)")
        for aes, by_sandbox in ((self._real, False), (self._sandbox, True)):
            if aes is None:
                continue
            try:
                return aes.decrypt(iv, sealed, None), by_sandbox
            except InvalidTag:
                continue
        hint = "" if self._sandbox is not None else " (set RUSTORE_SANDBOX_NOTIFICATION_KEY for test payments)"
        raise NotificationDecryptError(
            "notification failed AES-GCM authentication: tampered with or encrypted with another key" + hint
        )


def decode_notification(
    body: bytes | str,
    *,
    key_b64: str | None,
    sandbox_key_b64: str | None = None,
    expected_app_id: int | None = None,
) -> Notification:
    """One-shot decode; prefer a long-lived `NotificationDecoder` so keys are parsed once."""
    return NotificationDecoder(key_b64, sandbox_key_b64, expected_app_id=expected_app_id).decode(body)


def _envelope(body: bytes | str) -> dict[str, str]:
    try:
        data = strict_json.loads(body)
    except strict_json.StrictJSONError as exc:
        raise NotificationEnvelopeError(f"notification body is not acceptable JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("payload"), str):
        raise NotificationEnvelopeError("notification body lacks a string `payload`")
    ident = to_str(data.get("id"))
    if ident is None:
        raise NotificationEnvelopeError("notification body lacks an `id`")
    return {"id": ident, "timestamp": data.get("timestamp"), "payload": data["payload"]}


def _data(value: Any) -> Any:
    if not isinstance(value, str | bytes):
        return value
    try:
        return strict_json.loads(value)
    except strict_json.StrictJSONError:
        raise NotificationPlaintextError("notification `data` is not a JSON string") from None


def _event(kind: str, data: Any) -> Event:
    base = kind.upper().removesuffix("_SANDBOX")
    if base in _KNOWN and not isinstance(data, dict):
        raise NotificationPlaintextError(f"{kind} notification `data` is not a JSON object")
    if base == "INVOICE_STATUS":
        old = to_str(data.get("status_old"))
        return InvoiceStatusEvent(
            invoice_id=to_str(data.get("invoice_id")),
            purchase_id=to_str(data.get("purchase_id")),
            order_id=to_str(data.get("order_id")),
            product_code=to_str(data.get("product_code")),
            status_new=InvoiceStatus.parse(data.get("status_new")),
            status_old=InvoiceStatus.parse(old) if old else None,
            change_status_time=parse_time(data.get("change_status_time")),
            purchase_token=to_str(data.get("purchase_token")),
            data=data,
        )
    if base == "SUBSCRIPTION_EVENT":
        new, old = to_str(data.get("status_new")), to_str(data.get("status_old"))
        return SubscriptionEvent(
            purchase_id=to_str(data.get("purchase_id")),
            product_code=to_str(data.get("product_code")),
            event_type=SubscriptionEventType.parse(data.get("subscription_event_type")),
            status_new=SubscriptionStatus.parse(new) if new else None,
            status_old=SubscriptionStatus.parse(old) if old else None,
            period_new=to_str(data.get("period_new")),
            period_old=to_str(data.get("period_old")),
            auto_renewing=to_bool(data.get("autorenewing", data.get("auto_renewing"))),
            event_time=parse_time(data.get("event_time")),
            invoice_id=to_str(data.get("invoice_id")),
            order_id=to_str(data.get("order_id")),
            developer_payload=to_str(data.get("developer_payload")),
            data=data,
        )
    if base == "TEST_EVENT":
        return TestEvent(data)
    return UnknownEvent(kind, data)
