"""Bursts from one address hit the rate limits exactly; X-Forwarded-For counts only from trusted proxies;
oversized bodies get 413 however they are sent; CORS answers only listed origins."""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from collections import Counter

import aiohttp

from tests.handlers.test_conventions import assert_error_shape
from tests.support.minute_window import same_window
from tests.support.overlap import InFlight

ALLOWED = "https://app.example.com"


async def burst(api, n: int, path: str = "/api/health", headers=None, **kw) -> Counter:
    """Send n requests at once (all n in flight before the first answer, asserted); count the statuses."""
    sent = InFlight()
    got = await sent.gather(*(api.request("GET", path, headers=headers(i) if callable(headers) else headers, **kw)
                              for i in range(n)))
    assert sent.peak == n
    for resp in got:
        if resp.status == 429:
            assert_error_shape(resp, 429, "rate_limited")
            assert int(resp.headers["Retry-After"]) >= 1
    return Counter(resp.status for resp in got)


async def test_a_concurrent_burst_from_one_address_gets_exactly_the_budget(start_server):
    _, api = await start_server(rate_limit_per_minute=10)
    await same_window()
    assert await burst(api, 30) == {200: 10, 429: 20}


async def test_a_concurrent_sign_in_burst_gets_exactly_the_auth_budget(start_server):
    _, api = await start_server(auth_rate_limit_per_minute=5)
    bodies = [{"email": f"nobody-{uuid.uuid4().hex[:6]}@example.com", "password": "wrong password"} for _ in range(15)]
    got = await (sent := InFlight()).gather(*(api.post("/api/auth/login", body) for body in bodies))
    assert sent.peak == 15  # all fifteen sign-ins were in flight before the first answer
    assert Counter(r.status for r in got) == {401: 5, 429: 10}
    assert {r.error_reason() for r in got if r.status == 429} == {"rate_limited"}


async def test_rotating_x_forwarded_for_from_an_untrusted_peer_is_still_one_address(start_server):
    # Not trusted at all, and trusted networks that do not include the peer (127.0.0.1): the header is ignored.
    for trusted in ((), ("10.9.0.0/16",)):
        _, api = await start_server(rate_limit_per_minute=4, trusted_proxies=trusted)
        await same_window()
        spoofed = await burst(api, 12, headers=lambda i: {"X-Forwarded-For": f"198.51.100.{i}", "X-Real-IP": f"203.0.113.{i}"})
        assert spoofed == {200: 4, 429: 8}, trusted


async def test_behind_a_trusted_proxy_each_client_address_has_its_own_budget(start_server):
    _, api = await start_server(rate_limit_per_minute=3, trusted_proxies=("127.0.0.1/32",))
    await same_window()
    clients = ("198.51.100.7", "198.51.100.8", "2001:db8::1")
    got = await asyncio.gather(*(burst(api, 5, headers={"X-Forwarded-For": ip}) for ip in clients))
    assert got == [Counter({200: 3, 429: 2})] * 3
    # The proxy appends the real peer last; what the client wrote in front of it does not buy a new budget.
    chained = await burst(api, 6, headers=lambda i: {"X-Forwarded-For": f"10.0.{i}.1, 192.0.2.44"})
    assert chained == {200: 3, 429: 3}


async def test_oversized_bodies_get_413_declared_or_chunked_on_every_kind_of_endpoint(start_server):
    _, api = await start_server(max_body_bytes=1024, rustore_notification_key=base64.b64encode(os.urandom(32)).decode())
    user = await api.register()
    auth = {"Authorization": f"Bearer {user['accessToken']}", "Content-Type": "application/json",
            "Idempotency-Key": "k-413"}
    targets = [("POST", "/api/auth/register", {}), ("POST", "/api/auth/login", {}), ("POST", "/api/points/spend", auth),
               ("PATCH", "/api/user/update", auth), ("POST", "/api/payments/verify", auth),
               ("POST", "/api/generation/request", auth), ("POST", "/api/webhooks/rustore", {})]
    big = b'{"pad": "' + b"x" * 4000 + b'"}'

    async def chunks():
        for _ in range(5):
            yield b" " * 500

    async with aiohttp.ClientSession() as session:
        for method, path, headers in targets:
            declared = await api.request(method, path, data=big, headers=headers)
            assert_error_shape(declared, 413, "payload_too_large")
            async with session.request(method, api.base_url + path, data=chunks(),
                                       headers={"Content-Type": "application/json", **headers}) as resp:
                body = await resp.json()
                assert (resp.status, body["reason"]) == (413, "payload_too_large"), (method, path, body)
    # A body exactly at the limit is read normally (and then validated).
    at_limit = b'{"email": "' + b"a" * (1024 - 40) + b'", "password": "long enough"}'
    assert len(at_limit) <= 1024
    assert_error_shape(await api.post("/api/auth/register", data=at_limit), 400, "validation_failed")


async def test_cors_answers_listed_origins_only(start_server):
    _, api = await start_server(cors_origins=(ALLOWED,))
    user = await api.register()
    lookalikes = ("https://evil.example.net", "null", "http://app.example.com", "https://app.example.com.evil.net",
                  "https://evil.app.example.com", "https://app.example.com:8443", "HTTPS://APP.EXAMPLE.COM")
    for origin in lookalikes:
        pre = await api.request("OPTIONS", "/api/points/spend", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "Authorization"})
        assert_error_shape(pre, 403, "cors_origin_not_allowed")
        for resp in (await api.get("/api/user/profile", token=user["accessToken"], headers={"Origin": origin}),
                     await api.get("/api/user/profile", headers={"Origin": origin})):  # an answer and an error
            assert resp.status in (200, 401)
            assert "Access-Control-Allow-Origin" not in resp.headers, origin
            assert "Access-Control-Allow-Credentials" not in resp.headers
    pre = await api.request("OPTIONS", "/api/points/spend", headers={
        "Origin": ALLOWED, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "Idempotency-Key"})
    assert pre.status == 204 and pre.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    assert "Idempotency-Key" in pre.headers["Access-Control-Allow-Headers"]
    for resp in (await api.get("/api/user/profile", token=user["accessToken"], headers={"Origin": ALLOWED}),
                 await api.get("/api/user/profile", headers={"Origin": ALLOWED})):
        assert resp.headers["Access-Control-Allow-Origin"] == ALLOWED and "Origin" in resp.headers["Vary"]
        assert "X-Request-ID" in resp.headers["Access-Control-Expose-Headers"]
