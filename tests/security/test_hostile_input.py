"""NoSQL operator injection in every documented string field is refused by validation and never reaches a query.

The fields come from the served OpenAPI document, which is generated from the schemas the handlers validate
with, so walking it covers every request body and query field there is. The server runs on a store proxy that
records every collection call; with the session already cached in Redis, a request refused by validation must
make no call at all, and no recorded filter, update or document may hold an injected key or marker.
"""

from __future__ import annotations

import base64
import os
import re
import uuid
from typing import Any

from mongomock_motor import AsyncMongoMockClient

from handlers.schemas import REFUSED_TEXT
from tests.handlers.test_conventions import assert_error_shape
from tests.support.openapi import JSON, is_public
from tests.support.recording import RecordingClient

MARK = "inj7f3a"
# Operator objects, a "$where"-style string, keys starting with '$' or holding a '.', and an array of operators.
PAYLOADS: list[Any] = [
    {"$ne": None}, {"$gt": ""}, f"$where: this.{MARK} || true", {"$where": f"sleep(100) || {MARK}"},
    {f"profile.{MARK}": "x"}, {"$regex": ".*", "$options": "i"}, [{"$ne": None}],
]
INJECTED_KEYS = {"$where", "$regex", "$options", f"profile.{MARK}"}
WEBHOOK = "/api/webhooks/rustore"


def string_type(schema: dict) -> bool:
    """Whether a documented schema admits strings."""
    kind = schema.get("type")
    return kind == "string" or (isinstance(kind, list) and "string" in kind)


def body_fields(doc: dict, op: dict) -> dict[str, dict]:
    """The documented properties of an operation's JSON request body."""
    ref = op["requestBody"]["content"][JSON]["schema"]["$ref"]
    return doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]["properties"]


def leaks(calls: list, payload: Any) -> list:
    """Recorded calls holding an injected key, the marker, or (for a '$' string) the string itself."""
    def tainted(value: Any) -> bool:
        return isinstance(value, str) and (value in INJECTED_KEYS or MARK in value or value == payload)
    return [call for call in calls if any(tainted(value) for value in call.values())]


async def hostile_server(start_server) -> tuple[Any, Any, dict, str]:
    """The app on a recording store, Google and VK ID configured (so their bodies are validated), a user signed in."""
    store = RecordingClient(AsyncMongoMockClient(tz_aware=True))
    service, api = await start_server(mongo=store, google_client_ids=("web-client",), vk_client_id="51234567",
                                      rustore_notification_key=base64.b64encode(os.urandom(32)).decode())
    user = await api.register()
    assert (await api.get("/api/user/profile", token=user["accessToken"])).status == 200  # caches the session
    doc = (await api.get("/api/openapi.json")).json
    return service, api, doc, user["accessToken"]


async def test_the_document_states_the_guard_on_every_free_text_request_field(api):
    doc = (await api.get("/api/openapi.json")).json
    unguarded = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            fields = dict(body_fields(doc, op)) if "requestBody" in op and path != WEBHOOK else {}
            fields |= {p["name"]: p["schema"] for p in op["parameters"] if p["in"] == "query"}
            for name, schema in fields.items():
                # Free text must carry Text's "no leading '$', no NUL"; enums and passwords are closed or only hashed.
                if string_type(schema) and "enum" not in schema and schema.get("format") != "password":
                    if schema.get("not", {}).get("pattern") != REFUSED_TEXT:
                        unguarded.append(f"{method.upper()} {path} {name}")
    assert not unguarded, unguarded


async def test_operator_injection_in_every_body_and_query_string_is_refused_before_any_query(start_server):
    service, api, doc, token = await hostile_server(start_server)
    db = service.ctx.db
    checked, problems = 0, []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if path == WEBHOOK or "{" in path:
                continue  # the webhook checks its own sealed body (below); path parameters have their own test
            auth = None if is_public(op) else token
            targets = [("body", name, schema) for name, schema in body_fields(doc, op).items()] if "requestBody" in op else []
            targets += [("query", p["name"], p["schema"]) for p in op["parameters"] if p["in"] == "query"]
            for where, name, schema in targets:
                if not string_type(schema):
                    continue
                for payload in PAYLOADS:
                    if where == "query" and not isinstance(payload, str):
                        continue  # a query string holds strings; bracketed names are covered below
                    before = len(db.calls)
                    kwargs: dict[str, Any] = {"json_body": {name: payload}} if where == "body" else {"params": {name: payload}}
                    resp = await api.request(method.upper(), path, token=auth, headers={"Idempotency-Key": uuid.uuid4().hex},
                                             **kwargs)
                    fields = (resp.json or {}).get("details", {}).get("fields", {})
                    password = schema.get("format") == "password" and isinstance(payload, str)
                    where_ = f"{method.upper()} {path} {where} {name}={payload!r}"
                    if password:
                        # A password may start with '$': it is only ever hashed, so it must not be refused for that.
                        if name in fields:
                            problems.append(f"{where_}: password refused: {fields[name]}")
                    elif resp.status != 400 or resp.error_reason() != "validation_failed" or name not in fields:
                        problems.append(f"{where_}: answered {resp.status} {resp.text[:200]}")
                    if not password and db.calls[before:]:
                        problems.append(f"{where_}: reached the store: {db.calls[before:]}")
                    checked += 1
    assert not problems, "\n".join(problems)
    assert checked > 150
    assert not leaks(db.calls, None)


async def test_operator_shaped_query_names_are_refused(start_server):
    _, api, _, token = await hostile_server(start_server)
    for path in ("/api/points/history", "/api/generation/history", "/api/payments/history"):
        for query in ("cursor[$ne]=x", "type[$gt]=", "limit[$where]=1", f"cursor.{MARK}=1", "$where=1"):
            resp = await api.get(f"{path}?{query}", token=token)
            assert_error_shape(resp, 400, "validation_failed")
            assert query.split("=")[0] in resp.json["details"]["fields"], (path, query, resp.text)


async def test_injection_in_path_parameters_finds_nothing_and_reaches_no_filter(start_server):
    service, api, _, token = await hostile_server(start_server)
    db = service.ctx.db
    for raw in ("$where", '{"$ne":null}', "%24ne", f"a.{MARK}", "$gt"):
        before = len(db.calls)
        for path in (f"/api/generation/{raw}", f"/api/generation/{raw}/image", f"/api/auth/sessions/{raw}"):
            resp = await api.request("DELETE" if "sessions" in path else "GET", path, token=token)
            assert resp.status == 404, (path, resp.text)
            assert resp.error_reason() in ("generation_not_found", "not_found"), (path, resp.text)
        # Ids are parsed (or matched by the route) before any lookup: the raw segment is in no filter.
        assert not leaks(db.calls[before:], raw.replace("%24", "$")), db.calls[before:]


async def test_webhook_envelope_with_operators_is_refused_without_touching_the_store(start_server):
    service, api, _, _ = await hostile_server(start_server)
    db = service.ctx.db
    for payload in PAYLOADS:
        before = len(db.calls)
        for envelope in ({"id": payload, "payload": "AAAA"}, {"id": "n-1", "payload": payload}, {"$where": MARK, "id": 1}):
            resp = await api.post(WEBHOOK, envelope)
            assert_error_shape(resp, 400, "invalid_notification")
        assert db.calls[before:] == [], db.calls[before:]


async def test_a_password_starting_with_dollar_is_accepted_and_only_its_hash_is_stored(start_server):
    service, api, _, _ = await hostile_server(start_server)
    password = f"$where: {MARK} || true"
    user = await api.register(password=password)
    login = await api.post("/api/auth/login", {"email": user["email"], "password": password})
    assert login.status == 200, login.text
    assert not leaks(service.ctx.db.calls, password)
    stored = await service.ctx.db["users"].find_one({"email": user["email"]})
    assert re.fullmatch(r"\$2b\$\d\d\$.{53}", stored["password_hash"])  # bcrypt's output, not the password
