"""The OpenAPI document: every route and verb, shared errors and security, the Idempotency-Key header, 3.1 validity.

Request and response bodies against the document are checked over HTTP in test_openapi_bodies.py.
"""

from __future__ import annotations

import inspect
import re
import types
from typing import Any

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

import handlers
from handlers import all_routes, make_app
from handlers.base import APIHandler
from handlers.docs import AUTH_ERRORS, api, operation_of
from handlers.generation import GenerationRequestSchema
from handlers.points import SpendHandler, SpendSchema
from handlers.routing import NotFoundHandler
from handlers.schemas import camelcase
from oauth import PROVIDERS
from tests.support.openapi import JSON, Contract, is_public

GROUP = re.compile(r"\([^()]*\)")
IDEMPOTENT = {("post", "/api/points/spend"), ("post", "/api/generation/request")}


def route_operations() -> dict[tuple[str, str], Any]:
    """{(method, path template): verb function} of every registered route verb, read from the route table."""
    found = {}
    for pattern, handler, *_ in all_routes():
        if not issubclass(handler, APIHandler) or issubclass(handler, NotFoundHandler):
            continue  # Swagger UI's static files; the JSON 404 fallbacks (catch-all, unknown OAuth providers)
        for verb in handler.allowed_methods():
            if verb in ("OPTIONS", "HEAD"):
                continue
            method = getattr(handler, verb.lower())
            names = iter([camelcase(p) for p in inspect.signature(method).parameters if p != "self"])
            found[(verb.lower(), GROUP.sub(lambda _, names=names: "{" + next(names) + "}", pattern))] = method
    return found


def reasons(op: dict, status: int) -> list[str]:
    """The `reason` values an operation documents for an error status (empty when the status is not documented)."""
    response = op["responses"].get(str(status))
    return response["content"][JSON]["schema"]["properties"]["reason"]["enum"] if response else []


@pytest.fixture
async def contract(api) -> Contract:
    resp = await api.get("/api/openapi.json")
    assert resp.status == 200, resp.text
    return Contract(resp.json)


async def test_every_route_and_verb_is_in_the_served_document(contract):
    routes = route_operations()
    documented = {(method, path): op for method, path, op in contract.operations()}
    assert len(routes) > 30
    assert set(routes) - set(documented) == set(), "routes missing from /api/openapi.json"
    assert set(documented) - set(routes) == set(), "documented operations no route serves"
    for (method, path), op in documented.items():
        in_path = [p["name"] for p in op["parameters"] if p["in"] == "path"]
        assert in_path == re.findall(r"\{(\w+)\}", path), (method, path)
        assert is_public(op) == bool(getattr(routes[(method, path)], "__public__", False)), (method, path)
    assert len({op["operationId"] for op in documented.values()}) == len(documented)


async def test_each_oauth_provider_declares_its_own_body(contract):
    bodies = set()
    for provider in PROVIDERS:
        sign_in = contract.operation("post", f"/api/auth/oauth/{provider}")
        link = contract.operation("post", f"/api/auth/oauth/{provider}/link")
        assert sign_in["requestBody"] == link["requestBody"]
        assert is_public(sign_in) and not is_public(link)
        assert "provider_not_configured" in reasons(sign_in, 404) and "provider_not_configured" in reasons(link, 404)
        assert not is_public(contract.operation("delete", f"/api/auth/oauth/{provider}"))
        bodies.add(sign_in["requestBody"]["content"][JSON]["schema"]["$ref"])
    assert len(bodies) == len(PROVIDERS)


async def test_shared_errors_and_security_are_documented_on_every_operation(contract):
    assert contract.doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    for method, path, op in contract.operations():
        where = f"{method} {path}"
        assert "rate_limited" in reasons(op, 429) and "internal_error" in reasons(op, 500), where
        if is_public(op):
            assert not set(AUTH_ERRORS) & set(reasons(op, 401)), where
        elif path.startswith("/api/server/"):  # the app team's services: an API key, never a user's token
            assert op["security"] == [{"serverApiKey": []}] and reasons(op, 401) == ["invalid_api_key"], where
        else:
            assert op["security"] == [{"bearerAuth": []}], where
            assert set(AUTH_ERRORS) <= set(reasons(op, 401)), where
        if "requestBody" in op:
            assert "payload_too_large" in reasons(op, 413), where
        if "requestBody" in op and path != "/api/webhooks/rustore":  # the webhook checks its raw body itself
            assert {"invalid_json", "validation_failed"} <= set(reasons(op, 400)), where
            assert "unsupported_media_type" in reasons(op, 415), where
        if any(p["in"] == "query" for p in op["parameters"]):
            assert "validation_failed" in reasons(op, 400), where


async def test_idempotency_key_header_is_required_exactly_on_spend_and_generation(api, contract):
    with_header = set()
    for method, path, op in contract.operations():
        header = [p for p in op["parameters"] if p["in"] == "header" and p["name"] == "Idempotency-Key"]
        if header:
            with_header.add((method, path))
            assert header[0]["required"] is True
            assert {"idempotency_key_required", "invalid_idempotency_key"} <= set(reasons(op, 400))
    assert with_header == IDEMPOTENT
    user = await api.register()
    for method, path in IDEMPOTENT:
        resp = await api.post(path, {}, token=user["accessToken"])
        assert resp.error_reason() == "idempotency_key_required"
        contract.check_response(method, path, resp)
        resp = await api.post(path, {}, token=user["accessToken"], headers={"Idempotency-Key": "\u00e9t\u00e9"})
        assert resp.error_reason() == "invalid_idempotency_key"


async def test_document_is_valid_openapi_3_1(contract):
    assert contract.doc["openapi"] == "3.1.0"
    validate(contract.doc, cls=OpenAPIV31SpecValidator)


async def test_authenticated_operations_refuse_a_missing_token_and_every_answer_is_documented(api, contract):
    for method, path, op in contract.operations():
        url = re.sub(r"\{\w+\}", "a1", path)
        resp = await api.request(method.upper(), url)
        if is_public(op):
            assert resp.error_reason() not in AUTH_ERRORS, (method, path, resp.text)
        elif op["security"] == [{"serverApiKey": []}]:
            assert (resp.status, resp.error_reason()) == (401, "invalid_api_key"), (method, path, resp.text)
        else:
            assert (resp.status, resp.error_reason()) == (401, "missing_token"), (method, path, resp.text)
        contract.check_response(method, path, resp)


async def test_the_app_refuses_to_start_with_an_undeclared_route(service, contract, monkeypatch):
    assert make_app(service.ctx).settings["openapi"] == contract.doc  # what /api/openapi.json serves, prebuilt

    class Undeclared(APIHandler):
        async def get(self) -> None:
            self.write_json({})

    extra = types.SimpleNamespace(default_handlers=[(r"/api/undeclared", Undeclared)])
    monkeypatch.setattr(handlers, "HANDLER_MODULES", [*handlers.HANDLER_MODULES, extra])
    with pytest.raises(RuntimeError, match="without an @api declaration: GET /api/undeclared"):
        make_app(service.ctx)


def test_load_refuses_a_schema_other_than_the_declared_one():
    serving = types.SimpleNamespace(operation=lambda: operation_of(SpendHandler.post),
                                    request=types.SimpleNamespace(method="POST"))
    assert isinstance(APIHandler._declared(serving, None, "body"), SpendSchema)
    same = SpendSchema()
    assert APIHandler._declared(serving, same, "body") is same
    with pytest.raises(RuntimeError, match="validates its body with GenerationRequestSchema but documents SpendSchema"):
        APIHandler._declared(serving, GenerationRequestSchema(), "body")
    with pytest.raises(RuntimeError, match="declares no query schema"):
        APIHandler._declared(serving, None, "query")

    @api("Nothing declared")
    async def bare(self) -> None: ...
    serving.operation = lambda: operation_of(bare)
    with pytest.raises(RuntimeError, match="declares no body schema"):
        APIHandler._declared(serving, None, "body")
