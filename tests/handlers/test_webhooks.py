"""POST /api/webhooks/rustore intake: authentication, de-duplication, source allow-list, test events.

Bodies are what RuStore sends: the emulator's recorded notifications re-encrypted with the app's
console key (`encrypt_payload`), or deliberately broken variants of them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections import Counter

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from loguru import logger

from core.metrics import WEBHOOKS
from documents import webhooks
from rustore.emulator import encrypt_payload
from tests.handlers.test_conventions import assert_error_shape
from tests.support.barrier import Barrier, HookedClient

PATH = "/api/webhooks/rustore"


def envelope(env, content: dict, notification_id: str, *, sandbox: bool = False, key: str | None = None) -> bytes:
    """A webhook body as RuStore sends it: `{id, timestamp, payload}` with the AES-GCM payload."""
    key = key or (env.app.sandbox_notification_key_b64 if sandbox else env.app.notification_key_b64)
    return json.dumps({"id": notification_id, "timestamp": "2026-11-26T10:38:58.619Z",
                       "payload": encrypt_payload(content, key)}).encode()


def content(env, kind: str, data: dict, *, app_id: int | None = None) -> dict:
    """Decrypted notification JSON; `data` is itself a JSON string, as RuStore does it."""
    return {"app_id": env.app_id if app_id is None else app_id, "notification_type": kind, "data": json.dumps(data)}


def recorded(env, kind: str = "INVOICE_STATUS") -> list[dict]:
    """The emulator's notifications of one type (its own record, with plaintext content), oldest first."""
    return [n for n in env.emulator.notifications() if n["notificationType"].removesuffix("_SANDBOX") == kind]


def replay(env, note: dict) -> bytes:
    """The body of an emulator notification, re-sent under its own id."""
    return envelope(env, note["content"], note["id"], sandbox=note["sandbox"])


async def post_webhook(env, body: bytes, headers: dict | None = None):
    return await env.api.post(PATH, data=body, headers=headers)


async def stored_events(env) -> list[dict]:
    cursor = env.service.ctx.db[webhooks.COLLECTION].find({}).sort("received_at", 1).limit(100)
    return await cursor.to_list(100)


async def settle_all(env, rounds: int = 10) -> None:
    """Wait until every notification (including ones our processing caused, like a confirm) is handled."""
    for _ in range(rounds):
        before = len(env.emulator.notifications())
        await env.settle()
        if len(env.emulator.notifications()) == before:
            return
    raise AssertionError("notifications kept coming")


def counter(outcome: str) -> float:
    return WEBHOOKS.labels(outcome)._value.get()


async def test_forged_notifications_are_refused_with_a_distinct_reason_and_change_nothing(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    await env.order_and_buy(user, "points_100")
    genuine = recorded(env)[-1]
    key = base64.b64decode(env.app.notification_key_b64)
    iv = os.urandom(12)
    not_json = base64.b64encode(iv + AESGCM(key).encrypt(iv, b"status=CONFIRMED", None)).decode()
    good = json.loads(replay(env, genuine))
    raw = bytearray(base64.b64decode(good["payload"]))
    raw[20] ^= 0x01
    cases = {
        "wrong key": (envelope(env, genuine["content"], "f1", key=base64.b64encode(os.urandom(32)).decode()),
                      "decryption_failed"),
        "tampered ciphertext": (json.dumps({**good, "payload": base64.b64encode(bytes(raw)).decode()}).encode(),
                                "decryption_failed"),
        "bad base64": (json.dumps({"id": "f3", "payload": "not*base64!"}).encode(), "payload_not_base64"),
        "body not JSON": (b"id=f4&payload=abc", "envelope_invalid"),
        "plaintext not JSON": (json.dumps({"id": "f5", "payload": not_json}).encode(), "plaintext_invalid"),
        "foreign app id": (envelope(env, {**genuine["content"], "app_id": env.app_id + 1}, "f6"), "app_id_mismatch"),
        "sandbox key on a real event": (envelope(env, genuine["content"], "f7",
                                                 key=env.app.sandbox_notification_key_b64), "key_mismatch"),
    }
    logs: list[str] = []
    sink = logger.add(logs.append, serialize=True, level="DEBUG")
    rejected_before = counter("rejected")
    try:
        for name, (body, detail) in cases.items():
            resp = await post_webhook(env, body)
            assert_error_shape(resp, 400, "invalid_notification")
            assert resp.json["details"] == {"error": detail}, name
    finally:
        logger.remove(sink)
    assert counter("rejected") - rejected_before == len(cases)
    assert await stored_events(env) == []
    assert (await env.api.get("/api/points/balance", token=user["accessToken"])).json["balance"] == 0
    secrets = [good["payload"], not_json, env.app.notification_key_b64, env.app.sandbox_notification_key_b64]
    assert any("webhook rejected" in line for line in logs)
    assert not [s for s in secrets if any(s in line for line in logs)], "payloads or keys reached the log"


async def test_redelivered_notification_is_acknowledged_as_duplicate_without_a_second_effect(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    await env.order_and_buy(user, "points_100")
    confirmed = recorded(env)[-1]
    duplicates_before = counter("duplicate")
    first = await post_webhook(env, replay(env, confirmed))
    assert first.status == 200 and first.json == {"status": "accepted", "id": confirmed["id"]}
    await env.settle()
    again = await post_webhook(env, replay(env, confirmed))  # freshly encrypted, same notification id
    assert again.status == 200 and again.json == {"status": "duplicate", "id": confirmed["id"]}
    await env.settle()
    assert counter("duplicate") - duplicates_before == 1
    stored = await stored_events(env)
    assert [(e["_id"], e["status"], e["attempts"]) for e in stored] == [(f"real:{confirmed['id']}", "processed", 1)]
    assert (await env.api.get("/api/points/balance", token=user["accessToken"])).json["balance"] == 100


async def test_concurrent_redeliveries_store_one_event_per_notification(emulated):
    mongo = HookedClient()
    env = await emulated(mongo=mongo, webhooks=False)
    user = await env.api.register()
    await env.order_and_buy(user, "points_100")
    notes = recorded(env)
    # Two deliveries past their checks, storing at once: only the unique _id keeps one event.
    mongo.hook = barrier = Barrier(2, "webhook_events", "insert_one")
    responses = await asyncio.gather(*(post_webhook(env, replay(env, n)) for n in notes for _ in range(5)))
    assert barrier.met
    assert {r.status for r in responses} == {200}
    assert Counter(r.json["status"] for r in responses) == {"accepted": len(notes), "duplicate": 4 * len(notes)}
    await env.settle()
    assert sorted(e["_id"] for e in await stored_events(env)) == sorted(f"real:{n['id']}" for n in notes)


async def test_test_events_are_accepted_and_real_and_sandbox_ids_are_separate(emulated):
    env = await emulated()
    env.emulator.send_test_notification(env.app_id)
    await env.settle()
    [delivered] = env.emulator.deliveries()
    assert delivered["status"] == 200
    [stored] = await stored_events(env)
    assert stored["type"] == "TEST_EVENT" and stored["status"] == "processed" and stored["expires_at"] is not None
    same_id_in_sandbox = envelope(env, content(env, "TEST_EVENT_SANDBOX", {"test": "TEST"}), stored["notification_id"],
                                  sandbox=True)
    resp = await post_webhook(env, same_id_in_sandbox)
    assert resp.status == 200 and resp.json["status"] == "accepted"
    ids = {e["_id"] for e in await stored_events(env)}
    assert ids == {f"real:{stored['notification_id']}", f"sandbox:{stored['notification_id']}"}


async def test_unknown_notification_types_are_stored_as_ignored(emulated):
    env = await emulated(webhooks=False)
    body = envelope(env, content(env, "REFUND_REQUESTED", {"$odd.key": 1, "purchase_token": "111.secret"}), "u1")
    resp = await post_webhook(env, body)
    assert resp.status == 200 and resp.json["status"] == "accepted"
    [stored] = await stored_events(env)
    assert stored["status"] == "ignored" and stored["type"] == "REFUND_REQUESTED"
    assert "111.secret" not in stored["event"]["data_json"] and "$odd.key" in stored["event"]["data_json"]


async def test_source_allow_list_uses_the_socket_address_unless_a_trusted_proxy_forwards(emulated):
    allowed = ("10.20.30.0/30",)
    direct = await emulated(webhooks=False, rustore_webhook_allowed_ips=allowed)
    body = envelope(direct, content(direct, "TEST_EVENT", {"test": "TEST"}), "ip1")
    resp = await post_webhook(direct, body)
    assert_error_shape(resp, 403, "webhook_source_not_allowed")
    spoofed = await post_webhook(direct, body, {"X-Forwarded-For": "10.20.30.1"})  # not from a trusted proxy
    assert_error_shape(spoofed, 403, "webhook_source_not_allowed")
    assert await stored_events(direct) == []

    proxied = await emulated(webhooks=False, rustore_webhook_allowed_ips=allowed, trusted_proxies=("127.0.0.1/32",))
    body = envelope(proxied, content(proxied, "TEST_EVENT", {"test": "TEST"}), "ip2")
    outsider = await post_webhook(proxied, body, {"X-Forwarded-For": "10.99.0.1"})
    assert_error_shape(outsider, 403, "webhook_source_not_allowed")
    smuggled = await post_webhook(proxied, body, {"X-Forwarded-For": "10.20.30.1, 10.99.0.1"})
    assert_error_shape(smuggled, 403, "webhook_source_not_allowed")
    via_proxy = await post_webhook(proxied, body, {"X-Forwarded-For": "10.20.30.1"})
    assert via_proxy.status == 200 and via_proxy.json["status"] == "accepted"
    assert "X-RateLimit-Limit" not in via_proxy.headers  # RuStore's replays are not throttled per IP

    local = await emulated(rustore_webhook_allowed_ips=("127.0.0.1/32",))
    local.emulator.send_test_notification(local.app_id)
    await local.settle()
    assert [d["status"] for d in local.emulator.deliveries()] == [200]


async def test_webhook_without_notification_keys_answers_503(api):
    resp = await api.post(PATH, data=b'{"id":"1","payload":"AAAA"}')
    assert_error_shape(resp, 503, "webhooks_not_configured")
