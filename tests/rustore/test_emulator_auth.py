"""The emulator's `/public/auth/` and token checks, driven with hand-signed requests (no client code)."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from rustore.emulator import Emulator, FakeClock, generate_key_pair
from rustore.signing import KeyPair
from tests.rustore.conftest import APP_ID, KEY_ID


def signed_body(key_id: str, private_key_b64: str, moment: datetime) -> dict[str, str]:
    """Auth body built directly from API.md §1.3."""
    timestamp = moment.isoformat(timespec="milliseconds")
    key = serialization.load_der_private_key(base64.b64decode(private_key_b64), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    signature = key.sign((key_id + timestamp).encode(), padding.PKCS1v15(), hashes.SHA512())
    return {"keyId": key_id, "timestamp": timestamp, "signature": base64.b64encode(signature).decode()}


async def post_auth(emulator: Emulator, body: Any, path: str = "/public/auth/") -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{emulator.base_url}{path}", json=body) as response:
            return response.status, await response.json()


async def get_with_token(emulator: Emulator, path: str, token: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Public-Token": token} if token else {}
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{emulator.base_url}{path}", headers=headers) as response:
            return response.status, await response.json()


@pytest.mark.parametrize("path", ["/public/auth/", "/public/auth"])
async def test_valid_signature_gets_opaque_token_with_900s_ttl(
    emulator: Emulator, key_pair: KeyPair, clock: FakeClock, path: str
) -> None:
    status, body = await post_auth(emulator, signed_body(KEY_ID, key_pair.private_key_b64, clock.now()), path)
    assert status == 200 and body["code"] == "OK" and body["message"] is None
    assert body["body"]["ttl"] == 900 and len(body["body"]["jwe"]) > 20
    assert "timestamp" in body


async def test_signature_from_wrong_key_is_refused_with_documented_message(
    emulator: Emulator, stranger_key_pair: KeyPair, clock: FakeClock
) -> None:
    status, body = await post_auth(emulator, signed_body(KEY_ID, stranger_key_pair.private_key_b64, clock.now()))
    assert (status, body["code"], body["message"], body["body"]) == (400, "ERROR", "Signature encode error", None)


async def test_key_pair_generated_in_test_is_accepted_once_registered(emulator: Emulator, clock: FakeClock) -> None:
    pair = generate_key_pair()
    emulator.register_key("555", pair.public_key_der_b64, {APP_ID})
    status, _ = await post_auth(emulator, signed_body("555", pair.private_key_b64, clock.now()))
    assert status == 200


async def test_garbage_signature_is_refused(emulator: Emulator, clock: FakeClock) -> None:
    body = {"keyId": KEY_ID, "timestamp": clock.now().isoformat(timespec="milliseconds"), "signature": "!!not-b64"}
    status, answer = await post_auth(emulator, body)
    assert (status, answer["message"]) == (400, "Signature encode error")


@pytest.mark.parametrize("offset_s, ok", [(59, True), (-59, True), (61, False), (-61, False)])
async def test_timestamp_must_be_within_60_seconds(
    emulator: Emulator, key_pair: KeyPair, clock: FakeClock, offset_s: int, ok: bool
) -> None:
    moment = clock.now() + timedelta(seconds=offset_s)
    status, body = await post_auth(emulator, signed_body(KEY_ID, key_pair.private_key_b64, moment))
    assert (status == 200) is ok
    if not ok:
        assert (status, body["message"]) == (400, "Range timestamp not valid")


async def test_unknown_and_disabled_keys_get_documented_errors(
    emulator: Emulator, key_pair: KeyPair, clock: FakeClock
) -> None:
    status, body = await post_auth(emulator, signed_body("999", key_pair.private_key_b64, clock.now()))
    assert (status, body["message"]) == (404, "Company key not found")
    emulator.disable_key(KEY_ID)
    status, body = await post_auth(emulator, signed_body(KEY_ID, key_pair.private_key_b64, clock.now()))
    assert (status, body["message"]) == (400, "Company key disabled")


async def test_missing_key_id_and_legacy_company_id_are_refused(emulator: Emulator, clock: FakeClock) -> None:
    stamp = clock.now().isoformat()
    status, body = await post_auth(emulator, {"timestamp": stamp, "signature": "AA=="})
    assert (status, body["message"]) == (400, "KeyId or companyId must be not null")
    status, body = await post_auth(emulator, {"companyId": "1275328", "timestamp": stamp, "signature": "AA=="})
    assert (status, body["message"]) == (400, "Incorrect usage of companyId. Please use keyId")


async def test_token_expires_after_ttl_and_unknown_tokens_are_rejected(
    emulator: Emulator, key_pair: KeyPair, clock: FakeClock
) -> None:
    _, body = await post_auth(emulator, signed_body(KEY_ID, key_pair.private_key_b64, clock.now()))
    token = body["body"]["jwe"]
    path = f"/public/applications/{APP_ID}/catalog/subscriptions"
    assert (await get_with_token(emulator, path, token))[0] == 200
    for bad in (None, "made-up-token"):
        status, answer = await get_with_token(emulator, path, bad)
        assert (status, answer["code"], answer["message"]) == (401, "ERROR", "Jwe token is expired")
    emulator.advance_clock(timedelta(seconds=900))
    status, answer = await get_with_token(emulator, path, token)
    assert (status, answer["message"]) == (401, "Jwe token is expired")


async def test_key_without_sandbox_methods_or_app_is_forbidden(emulator: Emulator, clock: FakeClock) -> None:
    pair = generate_key_pair()
    emulator.register_key("real-only", pair.public_key_pem, {APP_ID}, sandbox=False)
    _, body = await post_auth(emulator, signed_body("real-only", pair.private_key_b64, clock.now()))
    token = body["body"]["jwe"]
    status, answer = await get_with_token(emulator, "/public/sandbox/v2/purchase/1", token)
    assert (status, answer["message"]) == (403, "Forbidden")
    emulator.register_key("other-app", pair.public_key_pem, {1})
    _, body = await post_auth(emulator, signed_body("other-app", pair.private_key_b64, clock.now()))
    status, answer = await get_with_token(
        emulator, f"/public/applications/{APP_ID}/catalog/subscriptions", body["body"]["jwe"])
    assert (status, answer["message"]) == (403, "Forbidden")
