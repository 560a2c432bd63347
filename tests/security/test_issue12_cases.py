"""Issue 12's cases as reported (case 3, the poisoned wallet, is test_poisoned_wallet.py), each answered as it must be."""

from __future__ import annotations

import base64
import json
import os

import aiohttp

from documents import wallet
from tests.handlers.test_conventions import assert_error_shape
from tests.handlers.test_generation import BIRTHDAY
from tests.support.openapi import Contract

DEEP = b"[" * 1000 + b"]" * 1000  # the issue's 2 KB body


async def test_1_a_thousand_levels_of_nesting_are_invalid_json_on_public_routes_and_the_webhook(start_server):
    _, api = await start_server(rustore_notification_key=base64.b64encode(os.urandom(32)).decode())
    for path in ("/api/auth/register", "/api/auth/login", "/api/auth/refresh"):
        resp = await api.post(path, data=DEEP)
        assert_error_shape(resp, 400, "invalid_json")
        assert "32 levels" in resp.json["error"]
    hook = await api.post("/api/webhooks/rustore", data=DEEP)
    assert_error_shape(hook, 400, "invalid_notification")


async def test_2_a_lone_surrogate_is_invalid_json_in_every_field_the_issue_names(api):
    user = await api.register()
    token = user["accessToken"]

    def surrogate(body: dict, field: str) -> bytes:
        # json.dumps escapes the lone surrogate as "\\ud800", exactly what a hostile client sends.
        return json.dumps({**body, field: body[field] + "\ud800"}).encode()

    cases = [
        ("/api/auth/login", {"email": user["email"], "password": user["password"]}, "password", None),
        ("/api/auth/register", {"email": "x@example.com", "password": "long enough"}, "email", None),
        ("/api/auth/refresh", {"refreshToken": user["refreshToken"]}, "refreshToken", None),
        ("/api/auth/logout", {"refreshToken": user["refreshToken"]}, "refreshToken", token),
        ("/api/points/spend", {"amount": 1, "reason": "r"}, "reason", token),
        ("/api/generation/request", dict(BIRTHDAY), "occasion", token),
    ]
    for path, body, field, auth in cases:
        resp = await api.post(path, data=surrogate(body, field), token=auth, headers={"Idempotency-Key": "k-" + field})
        assert_error_shape(resp, 400, "invalid_json")
    update = await api.patch("/api/user/update", data=surrogate({"currentPassword": user["password"],
                                                                "email": "n@example.com"}, "email"), token=token)
    assert_error_shape(update, 400, "invalid_json")
    # Nothing happened: the session still works, the balance did not move, no generation exists.
    assert (await api.get("/api/points/balance", token=token)).json["balance"] == 0
    assert (await api.get("/api/generation/history", token=token)).json["items"] == []


async def test_4_a_chunked_body_over_one_mebibyte_gets_the_json_413(api):
    async def chunks():
        for _ in range(24):
            yield b" " * 65536

    async with aiohttp.ClientSession() as session:
        async with session.post(api.base_url + "/api/auth/register", data=chunks(),
                                headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 413 and resp.headers["Content-Type"].startswith("application/json")
            assert await resp.json() == {"error": "Request body exceeds 65536 bytes.", "code": 413,
                                         "reason": "payload_too_large"}


async def test_5_look_alike_emails_are_one_account_or_refused(api):
    owner = await api.register(email="name@example.com")
    for invisible in ("name\u200b@example.com", "\u202eevil\u202c@example.com", "na\u00adme@example.com",
                      "name\ufeff@example.com", "name@exam\u2060ple.com"):
        resp = await api.post("/api/auth/register", {"email": invisible, "password": "long enough"})
        assert_error_shape(resp, 400, "validation_failed")
        assert "invisible" in resp.json["details"]["fields"]["email"][0]
    for same in ("ｎａｍｅ@example.com", "NAME@EXAMPLE.COM", "Ｎame@ｅxample.com"):
        assert_error_shape(await api.post("/api/auth/register", {"email": same, "password": "long enough"}),
                           409, "email_taken")
        login = await api.post("/api/auth/login", {"email": same, "password": owner["password"]})
        assert login.status == 200 and login.json["userId"] == owner["userId"]
    # The '$' rule looks through invisible and fullwidth characters.
    for reason in ("$where", "\u200b$where", "＄where", " \ufeff﹩x"):
        resp = await api.post("/api/points/spend", {"amount": 1, "reason": reason}, token=owner["accessToken"],
                              headers={"Idempotency-Key": "dollar"})
        assert_error_shape(resp, 400, "validation_failed")
        assert resp.json["details"]["fields"] == {"reason": ["Must not start with '$'."]}


async def test_6_the_document_accepts_exactly_what_the_validators_accept(api, service):
    contract = Contract((await api.get("/api/openapi.json")).json)
    user = await api.register()
    token = user["accessToken"]
    await wallet.credit(service.ctx.db, user["userId"], 1000, "admin_grant", "grant")
    cases = [
        ("post", "/api/auth/register", {"email": "p1@example.com", "password": "ab"}),
        ("post", "/api/auth/register", {"email": "p2@example.com", "password": "ж" * 7}),
        ("post", "/api/auth/register", {"email": "p3@example.com", "password": "ж" * 40}),
        ("post", "/api/auth/register", {"email": "p4@example.com", "password": "x" * 73}),
        ("post", "/api/auth/register", {"email": "p5@example.com", "password": "😀" * 8}),
        ("post", "/api/points/spend", {"amount": 275.0}),
        ("post", "/api/points/spend", {"amount": 2.5}),
        ("post", "/api/points/spend", {"amount": "3"}),
        ("post", "/api/auth/refresh", {"refreshToken": "   "}),
        ("post", "/api/auth/refresh", {"refreshToken": " \u3000 "}),
        ("post", "/api/subscriptions/verify", {"productId": "premium_monthly"}),
        ("post", "/api/subscriptions/verify", {"productId": "premium_monthly", "purchaseId": "p", "subscriptionToken": "t"}),
        ("post", "/api/subscriptions/verify", {"productId": "premium_monthly", "purchaseId": None, "subscriptionToken": None}),
        ("patch", "/api/user/update", {"currentPassword": user["password"]}),
        ("patch", "/api/user/update", {}),
    ]
    disagreements = []
    for method, path, body in cases:
        documented_ok = not contract.request_errors(method, path, body)
        resp = await api.request(method.upper(), path, json_body=body, token=token, headers={"Idempotency-Key": path})
        shape_refused = resp.status == 400 and resp.error_reason() == "validation_failed"
        if documented_ok == shape_refused:
            disagreements.append(f"{method.upper()} {path} {body}: document says {documented_ok}, server {resp.status}")
    assert not disagreements, "\n".join(disagreements)
    spend = contract.doc["components"]["schemas"]["Spend"]["properties"]["amount"]
    assert spend["type"] == "integer"
    refresh = contract.doc["components"]["schemas"]["Refresh"]["properties"]["refreshToken"]
    assert "trimmed" in refresh["description"]
    assert "oneOf" in contract.doc["components"]["schemas"]["SubscriptionVerify"]
