"""HTTP conventions every endpoint shares: error shape, limits, validation, headers, auth coverage."""

from __future__ import annotations

import re
import uuid

import aiohttp
import pytest
import tornado.web

from handlers import all_routes, make_app
from handlers.base import APIHandler
from handlers.routing import check_routes
from tests.support.faults import FaultyClient
from tests.support.minute_window import same_window
from tests.support.overlap import InFlight


def assert_error_shape(resp, status: int, reason: str) -> None:
    assert resp.status == status, resp.text
    assert set(resp.json) <= {"error", "code", "reason", "details"}
    assert resp.json["code"] == status
    assert resp.json["reason"] == reason
    assert isinstance(resp.json["error"], str) and resp.json["error"]


async def test_unknown_route_returns_json_404(api):
    for method in ("GET", "POST", "DELETE"):
        resp = await api.request(method, "/api/does-not-exist")
        assert_error_shape(resp, 404, "not_found")
    assert_error_shape(await api.get("/elsewhere"), 404, "not_found")


async def test_wrong_method_returns_405_with_allow_header(api):
    resp = await api.delete("/api/health")
    assert_error_shape(resp, 405, "method_not_allowed")
    assert set(resp.headers["Allow"].replace(" ", "").split(",")) == {"GET", "OPTIONS"}
    # An authenticated route answers 405 for a verb it lacks even without a token.
    resp = await api.request("PUT", "/api/user/profile")
    assert_error_shape(resp, 405, "method_not_allowed")


async def test_body_larger_than_limit_is_refused_with_413(start_server):
    _, api = await start_server(max_body_bytes=1024)
    big = {"email": "a@example.com", "password": "x" * 2000}
    assert_error_shape(await api.post("/api/auth/register", big), 413, "payload_too_large")

    async def chunks():
        for _ in range(4):
            yield b" " * 600
    async with aiohttp.ClientSession() as session:
        async with session.post(api.base_url + "/api/auth/register", data=chunks(),
                                headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 413
            assert (await resp.json())["reason"] == "payload_too_large"


async def test_invalid_json_and_non_objects_are_400(api):
    assert_error_shape(await api.post("/api/auth/login", data="{not json"), 400, "invalid_json")
    assert_error_shape(await api.post("/api/auth/login", data="[1, 2]"), 400, "invalid_json")
    assert_error_shape(await api.post("/api/auth/login", data='{"email": NaN}'), 400, "invalid_json")
    resp = await api.post("/api/auth/login", data="{}", headers={"Content-Type": "text/plain"})
    assert_error_shape(resp, 415, "unsupported_media_type")


async def test_unknown_fields_are_rejected_with_field_details(api):
    resp = await api.post("/api/auth/register", {"email": "a@example.com", "password": "long enough", "role": "admin"})
    assert_error_shape(resp, 400, "validation_failed")
    assert "role" in resp.json["details"]["fields"]


async def test_types_are_strict_and_strings_bounded(api):
    user = await api.register()
    resp = await api.post("/api/auth/logout", {"all": 1}, token=user["accessToken"])
    assert_error_shape(resp, 400, "validation_failed")
    assert "all" in resp.json["details"]["fields"]
    resp = await api.post("/api/auth/login", {"email": "a" * 300 + "@example.com", "password": "long enough"})
    assert_error_shape(resp, 400, "validation_failed")
    resp = await api.post("/api/auth/register", {"email": ["a@example.com"], "password": "long enough"})
    assert_error_shape(resp, 400, "validation_failed")
    resp = await api.post("/api/auth/register", {"email": {"$ne": None}, "password": "long enough"})
    assert_error_shape(resp, 400, "validation_failed")


async def test_security_headers_and_request_id(api):
    resp = await api.get("/api/health", headers={"X-Request-ID": "client-req-42"})
    assert resp.headers["X-Request-ID"] == "client-req-42"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Cache-Control"] == "no-store"
    generated = (await api.get("/api/health", headers={"X-Request-ID": "bad id with spaces"})).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)


async def test_cors_allows_listed_origins_only(start_server):
    _, api = await start_server(cors_origins=("https://app.example.com",))
    pre = await api.request("OPTIONS", "/api/user/profile", headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "Authorization"})
    assert pre.status == 204
    assert pre.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "Authorization" in pre.headers["Access-Control-Allow-Headers"]
    assert "GET" in pre.headers["Access-Control-Allow-Methods"]
    denied = await api.request("OPTIONS", "/api/user/profile", headers={
        "Origin": "https://evil.example.net", "Access-Control-Request-Method": "GET"})
    assert_error_shape(denied, 403, "cors_origin_not_allowed")
    assert "Access-Control-Allow-Origin" not in denied.headers
    simple = await api.get("/api/health", headers={"Origin": "https://evil.example.net"})
    assert "Access-Control-Allow-Origin" not in simple.headers


async def test_rate_limit_per_ip_returns_429_with_headers(start_server):
    _, api = await start_server(rate_limit_per_minute=5)
    await same_window()  # the budget is a fixed minute window: all 7 requests must fall in one
    statuses = []
    for _ in range(7):
        resp = await api.get("/api/health")
        statuses.append(resp.status)
    assert statuses[:5] == [200] * 5 and statuses[5:] == [429, 429]
    assert_error_shape(resp, 429, "rate_limited")
    assert int(resp.headers["Retry-After"]) >= 1
    assert resp.headers["X-RateLimit-Limit"] == "5"
    assert resp.headers["X-RateLimit-Remaining"] == "0"
    assert int(resp.headers["X-RateLimit-Reset"]) > 0


async def test_rate_limit_is_shared_across_processes_through_redis(start_server):
    shared = f"test:shared-rl:{uuid.uuid4().hex[:12]}:"  # shared by these two servers only, not by reruns
    _, first = await start_server(rate_limit_per_minute=4, redis_prefix=shared)
    _, second = await start_server(rate_limit_per_minute=4, redis_prefix=shared)
    await same_window()
    statuses = [(await (first if i % 2 else second).get("/api/health")).status for i in range(6)]
    assert statuses == [200, 200, 200, 200, 429, 429]


async def test_forwarded_for_is_ignored_unless_peer_is_trusted(start_server):
    _, untrusted = await start_server(rate_limit_per_minute=2)
    await same_window()
    spoofed = [(await untrusted.get("/api/health", headers={"X-Forwarded-For": f"10.0.0.{i}"})).status for i in range(3)]
    assert spoofed == [200, 200, 429]
    _, trusted = await start_server(rate_limit_per_minute=2, trusted_proxies=("127.0.0.1/32",))
    await same_window()
    distinct = [(await trusted.get("/api/health", headers={"X-Forwarded-For": f"10.0.0.{i}"})).status for i in range(3)]
    assert distinct == [200, 200, 200]


async def test_production_requires_https_and_sends_hsts_behind_trusted_proxy(start_server):
    _, api = await start_server(app_env="production", trusted_proxies=("127.0.0.1/32",))
    plain = await api.get("/api/user/profile")
    assert_error_shape(plain, 403, "https_required")
    assert (await api.get("/api/health")).status == 200  # probes stay reachable over internal HTTP
    forwarded = await api.get("/api/user/profile", headers={"X-Forwarded-Proto": "https"})
    assert_error_shape(forwarded, 401, "missing_token")
    assert forwarded.headers["Strict-Transport-Security"].startswith("max-age=")


async def test_unexpected_exception_is_500_without_leaking_details(start_server):
    from mongomock_motor import AsyncMongoMockClient

    store = FaultyClient(AsyncMongoMockClient(tz_aware=True))
    service, api = await start_server(mongo=store)
    service.ctx.db.fail("users", "insert_one", RuntimeError("secret internal detail"))
    resp = await api.post("/api/auth/register", {"email": "a@example.com", "password": "long enough"})
    assert_error_shape(resp, 500, "internal_error")
    assert "secret" not in resp.text and "Traceback" not in resp.text
    assert resp.headers["X-Request-ID"]


async def test_every_route_is_authenticated_or_public(api):
    """Walk the registered routes: every verb not marked public must refuse a request without a token."""
    checked = 0
    for pattern, handler, *_ in all_routes():
        if pattern == r".*" or getattr(handler, "public_handler", False):
            continue
        assert issubclass(handler, APIHandler), f"{pattern} is not an APIHandler"
        path = re.sub(r"\([^)]*\)", "abc123", pattern)
        for method in handler.allowed_methods():
            if method in ("OPTIONS", "HEAD"):
                continue
            verb = getattr(handler, method.lower())
            if getattr(verb, "__public__", False):
                continue
            resp = await api.request(method, path, json_body={} if method in ("POST", "PUT", "PATCH") else None)
            assert resp.status == 401, f"{method} {pattern} answered {resp.status} without a token"
            expected = "invalid_api_key" if getattr(verb, "__auth__", None) == "api_key" else "missing_token"
            assert resp.json["reason"] == expected
            checked += 1
    assert checked >= 5


def test_app_refuses_a_route_that_is_neither_authenticated_nor_public(service):
    class Bare(tornado.web.RequestHandler):
        def get(self):
            self.write("open")

    app = make_app(service.ctx)
    app.wildcard_router.add_rules([(r"/api/bare", Bare)])
    with pytest.raises(RuntimeError, match="neither authenticated nor marked public"):
        check_routes(app)


async def test_concurrent_requests_do_not_share_state(api):
    users = await (registering := InFlight()).gather(*(api.register() for _ in range(5)))
    profiles = await (reading := InFlight()).gather(*(api.get("/api/user/profile", token=u["accessToken"])
                                                      for u in users))
    assert registering.peak == reading.peak == 5  # each batch was in flight at once
    assert [p.json["email"] for p in profiles] == [u["email"] for u in users]
