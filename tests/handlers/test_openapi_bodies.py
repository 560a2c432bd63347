"""Request and response bodies against the OpenAPI document, over HTTP: the documented schema is the validated one.

For every operation with a JSON body, a hand-written minimal body that the document calls valid gets past the
handler's validation, and the same body with an unknown field, or without a required property, is refused by
both the document and the handler, which names the field. Every answer seen must be documented for its status
and match that status's schema; a handful of real success answers are checked the same way.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Callable

import pytest

from documents import wallet
from tests.oauth.fake_vk import VkUser, oauth_settings
from tests.support.openapi import JSON, Contract, is_public

PASSWORD = "correct horse 1"
VERIFIER = "pkce-verifier-" + "x" * 40
EXTRA = "unexpectedField"
PRODUCT = "no.such.product"
IDEMPOTENT = {"/api/points/spend", "/api/generation/request"}


def email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


def samples(google, vk) -> dict[tuple[str, str], Callable[[], dict]]:
    """A minimal body the document calls valid, per operation (made fresh per call: accounts must not collide)."""
    vk_code = lambda: {"code": vk.issue_code(VkUser(int(uuid.uuid4().int % 10**9)), VERIFIER),  # noqa: E731
                       "codeVerifier": VERIFIER, "vkDeviceId": "vk-device-1"}
    google_token = lambda: {"idToken": google.id_token(sub=uuid.uuid4().hex, email=None)}  # noqa: E731
    purchase = lambda: {"invoiceId": "123", "purchaseId": "p-1", "productId": PRODUCT}  # noqa: E731
    subscription = lambda: {"productId": PRODUCT, "purchaseId": "p-1"}  # noqa: E731
    return {
        ("post", "/api/auth/register"): lambda: {"email": email(), "password": PASSWORD},
        ("post", "/api/auth/login"): lambda: {"email": "nobody@example.com", "password": PASSWORD},
        ("post", "/api/auth/refresh"): lambda: {"refreshToken": "not-a-refresh-token"},
        ("post", "/api/auth/logout"): lambda: {},
        ("post", "/api/auth/oauth/google"): google_token,
        ("post", "/api/auth/oauth/google/link"): google_token,
        ("post", "/api/auth/oauth/vk"): vk_code,
        ("post", "/api/auth/oauth/vk/link"): vk_code,
        ("patch", "/api/user/update"): lambda: {"currentPassword": PASSWORD, "email": email()},
        ("post", "/api/points/spend"): lambda: {"amount": 1},
        ("post", "/api/generation/request"): lambda: {"kind": "greeting", "occasion": "Birthday"},
        ("post", "/api/payments/orders"): lambda: {"productId": PRODUCT},
        ("post", "/api/payments/verify"): purchase,
        ("post", "/api/points/buy"): purchase,
        ("post", "/api/subscriptions/create"): lambda: {"productId": PRODUCT},
        ("post", "/api/subscriptions/verify"): subscription,
        ("post", "/api/subscriptions/renew"): subscription,
        ("post", "/api/subscriptions/cancel"): lambda: {},
        ("post", "/api/auth/password/forgot"): lambda: {"email": email()},
        ("post", "/api/auth/password/reset"): lambda: {"token": "not-a-reset-token", "newPassword": PASSWORD},
        ("post", "/api/auth/email/verify"): lambda: {"token": "not-a-verification-token"},
        ("delete", "/api/user"): lambda: {"password": PASSWORD},
    }


@pytest.fixture
async def contract(api) -> Contract:
    return Contract((await api.get("/api/openapi.json")).json)


def required(contract: Contract, op: dict) -> list[str]:
    """The required properties of an operation's documented request body."""
    ref = op["requestBody"]["content"][JSON]["schema"]["$ref"]
    return contract.doc["components"]["schemas"][ref.rsplit("/", 1)[-1]].get("required", [])


async def test_documented_request_schemas_are_the_ones_handlers_validate(start_server, google, vk):
    _, api = await start_server(**oauth_settings(google, vk))
    contract = Contract((await api.get("/api/openapi.json")).json)
    bodies = samples(google, vk)
    with_json_body = {(m, p) for m, p, op in contract.operations() if "requestBody" in op and p != "/api/webhooks/rustore"}
    assert with_json_body == set(bodies), "add a minimal valid body here for each new operation with a body"

    for (method, path), make in bodies.items():
        op = contract.operation(method, path)

        async def send(body: dict, method=method, path=path, op=op):
            token = None if is_public(op) else (await api.register(password=PASSWORD))["accessToken"]
            headers = {"Idempotency-Key": uuid.uuid4().hex} if path in IDEMPOTENT else None
            resp = await api.request(method.upper(), path, json_body=body, token=token, headers=headers)
            contract.check_response(method, path, resp)
            return resp

        body = make()
        assert contract.request_errors(method, path, body) == [], (method, path)
        resp = await send(body)
        assert resp.error_reason() not in ("validation_failed", "invalid_json"), (method, path, resp.text)

        unknown = {**make(), EXTRA: 1}
        assert contract.request_errors(method, path, unknown), (method, path)
        resp = await send(unknown)
        assert resp.error_reason() == "validation_failed" and EXTRA in resp.json["details"]["fields"], (path, resp.text)

        for name in required(contract, op):
            missing = {k: v for k, v in make().items() if k != name}
            assert contract.request_errors(method, path, missing), (method, path, name)
            resp = await send(missing)
            assert resp.error_reason() == "validation_failed" and name in resp.json["details"]["fields"], (path, resp.text)


async def test_the_webhook_envelope_is_the_one_the_decoder_checks(start_server):
    _, api = await start_server(rustore_notification_key=base64.b64encode(os.urandom(32)).decode())
    contract = Contract((await api.get("/api/openapi.json")).json)
    path = "/api/webhooks/rustore"
    sealed = base64.b64encode(os.urandom(64)).decode()  # well-formed, but not sealed with our key
    cases = [({"id": "n-1", "timestamp": "2026-11-26T10:38:58.619Z", "payload": sealed}, True),
             ({"id": 17, "payload": sealed, "addedByRuStoreLater": True}, True),
             ({"id": "n-1"}, False), ({"payload": sealed}, False), ({"id": "n-1", "payload": 5}, False)]
    for envelope, documented_valid in cases:
        assert (contract.request_errors("post", path, envelope) == []) is documented_valid, envelope
        resp = await api.post(path, data=json.dumps(envelope))
        contract.check_response("post", path, resp)
        assert resp.error_reason() == "invalid_notification"
        assert (resp.json["details"]["error"] != "envelope_invalid") is documented_valid, (envelope, resp.text)


async def test_real_answers_match_their_documented_schemas(served, contract):
    service, api = served
    checked: list[tuple[str, str]] = []

    async def call(method: str, path: str, template: str | None = None, **kw):
        resp = await api.request(method.upper(), path, **kw)
        contract.check_response(method, template or path, resp)
        checked.append((method, template or path))
        return resp

    tokens = (await call("post", "/api/auth/register", json_body={"email": email(), "password": PASSWORD})).json
    auth = {"token": tokens["accessToken"]}
    await call("post", "/api/auth/refresh", json_body={"refreshToken": tokens["refreshToken"]})
    await call("get", "/api/user/profile", **auth)
    await call("get", "/api/products")
    await call("get", "/api/auth/sessions", **auth)
    await call("get", "/api/auth/oauth", **auth)
    await call("get", "/api/subscriptions/status", **auth)
    await call("get", "/api/payments/history", **auth)
    await call("get", "/api/points/balance", **auth)
    await wallet.credit(service.ctx.db, tokens["userId"], 6, "admin_grant", "test:grant")
    spend = {"json_body": {"amount": 2, "reason": "Sticker pack"}, "headers": {"Idempotency-Key": "k-1"}, **auth}
    first = await call("post", "/api/points/spend", **spend)
    assert (await call("post", "/api/points/spend", **spend)).json == first.json
    assert (await call("post", "/api/points/spend", **{**spend, "json_body": {"amount": 999}})).status == 422
    assert (await call("get", "/api/points/history", **auth)).json["items"]
    assert (await call("get", "/api/points/history", params={"cursor": "bogus!"}, **auth)).status == 400
    card = await call("post", "/api/generation/request", json_body={"kind": "card", "occasion": "Birthday"},
                      headers={"Idempotency-Key": "g-1"}, **auth)
    generation = card.json["generationId"]
    await call("get", f"/api/generation/{generation}", "/api/generation/{generationId}", **auth)
    image_op = contract.operation("get", "/api/generation/{generationId}/image")
    async with api.session.get(f"{api.base_url}/api/generation/{generation}/image",
                               headers={"Authorization": f"Bearer {tokens['accessToken']}"}) as image:
        assert image.status == 200 and (await image.read()).startswith(b"\x89PNG")
        assert list(image_op["responses"]["200"]["content"]) == [image.headers["Content-Type"]]
    assert (await call("get", "/api/generation/history", **auth)).json["items"]
    broke = await call("post", "/api/generation/request", json_body={"kind": "card", "occasion": "Birthday"},
                       headers={"Idempotency-Key": "g-2"}, **auth)
    assert broke.error_reason() == "insufficient_points"
    invalid = await call("post", "/api/points/spend", json_body={"amount": "1"}, headers={"Idempotency-Key": "k-2"}, **auth)
    assert invalid.error_reason() == "validation_failed"
    await call("post", "/api/auth/logout", json_body={}, **auth)
    assert (await call("get", "/api/user/profile", **auth)).error_reason() == "session_ended"
    assert len(checked) >= 20
