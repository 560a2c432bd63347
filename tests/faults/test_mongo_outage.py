"""MongoDB down or hung, over the wire (tests/support/wire_mongo.py): fast 503s, readiness, webhooks, jobs, recovery."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
from loguru import logger
from prometheus_client import REGISTRY

from core.emulated import build_emulator
from documents import webhooks
from jobs import find_job
from jobs.runner import run_job
from rustore.emulator import encrypt_payload
from tests.conftest import make_settings
from tests.handlers.test_conventions import assert_error_shape
from tests.support.wire_mongo import Fault

BOUND_S = 1.5  # mongo_operation_timeout_ms of the over_the_wire fixture
SLACK_S = 1.0  # what the event loop, the HTTP round trip and a loaded test machine may add
LOAD = 60  # concurrent requests: several times Motor's driver threads (5 per CPU)


def unavailable(component: str) -> float:
    return REGISTRY.get_sample_value("mongo_unavailable_total", {"component": component}) or 0.0


async def timed(call) -> tuple[object, float]:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    result = await call
    return result, time.monotonic() - started


async def until_ok(call_factory, deadline_s: float = 10.0):  # type: ignore[no-untyped-def]
    """Repeat a request until it answers 200 (MongoDB is back): the last response."""
    end = time.monotonic() + deadline_s
    while True:
        resp = await call_factory()
        if resp.status == 200 or time.monotonic() > end:
            return resp
        await asyncio.sleep(0.2)


def assert_database_unavailable(resp) -> None:  # type: ignore[no-untyped-def]
    assert_error_shape(resp, 503, "database_unavailable")
    assert resp.headers["Retry-After"] == "5"
    assert resp.json["details"] == {"retryable": True}


async def test_a_hung_store_answers_503_within_the_bound_ready_503_health_200_and_recovers_without_restart(
        over_the_wire):
    env = await over_the_wire()
    user = await env.api.register()
    token = user["accessToken"]
    before = unavailable("api")
    env.wire.hung = True  # connections stay open, nothing is ever answered

    resp, elapsed = await timed(env.api.get("/api/points/balance", token=token))
    assert_database_unavailable(resp)
    assert elapsed < BOUND_S + SLACK_S, elapsed
    resp, elapsed = await timed(env.api.post("/api/points/spend", {"amount": 1}, token=token,
                                             headers={"Idempotency-Key": "during-outage"}))
    assert_database_unavailable(resp)
    assert elapsed < BOUND_S + SLACK_S, elapsed
    resp, elapsed = await timed(env.api.post("/api/auth/login", {"email": user["email"], "password": user["password"]}))
    assert_database_unavailable(resp)
    assert elapsed < BOUND_S + SLACK_S, elapsed
    assert unavailable("api") - before == 3
    assert env.wire.unanswered >= 1  # the 503s come from a store that took the commands and never answered

    ready, elapsed = await timed(env.api.get("/api/ready"))
    assert ready.status == 503 and ready.json["details"]["down"] == ["mongo"]
    assert elapsed < 2.0 + SLACK_S
    health, elapsed = await timed(env.api.get("/api/health"))
    assert (health.status, health.json, elapsed < 0.5) == (200, {"status": "ok"}, True)

    env.wire.hung = False  # MongoDB answers again: same process, same clients
    resp = await until_ok(lambda: env.api.get("/api/points/balance", token=token))
    assert (resp.status, resp.json["balance"]) == (200, 0)
    assert (await env.api.get("/api/ready")).status == 200


async def test_under_load_a_hung_store_still_answers_every_request_503_within_twice_the_bound(over_the_wire):
    # Motor runs PyMongo on a few threads; calls queued behind blocked ones are refused, not left waiting.
    env = await over_the_wire()
    user = await env.api.register()
    env.wire.hung = True
    url = env.api.base_url + "/api/user/profile"

    async def one(session: aiohttp.ClientSession) -> tuple[int, float]:
        started = time.monotonic()
        async with session.get(url, headers={"Authorization": f"Bearer {user['accessToken']}"}) as resp:
            await resp.read()
            return resp.status, time.monotonic() - started

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        results = await asyncio.gather(*(one(session) for _ in range(LOAD)))
    assert {status for status, _ in results} == {503}
    assert env.wire.unanswered >= 1  # the store held commands unanswered while the load queued behind them
    slowest = max(elapsed for _, elapsed in results)
    assert slowest < 2 * BOUND_S + 2 * SLACK_S, slowest  # without the refusal: about LOAD / threads bounds


async def test_a_stopped_store_answers_503_fast_and_the_same_process_resumes_when_it_is_back(over_the_wire):
    env = await over_the_wire()
    user = await env.api.register()
    env.wire.stop()  # the port now refuses connections

    resp, elapsed = await timed(env.api.get("/api/user/profile", token=user["accessToken"]))
    assert_database_unavailable(resp)
    assert elapsed < BOUND_S + SLACK_S, elapsed  # server selection (1 s here) inside the operation bound
    assert (await env.api.get("/api/ready")).json["details"]["down"] == ["mongo"]

    env.wire.restart()
    resp = await until_ok(lambda: env.api.get("/api/user/profile", token=user["accessToken"]))
    assert resp.status == 200 and resp.json["email"] == user["email"]


def webhook_settings():
    """Test settings with RuStore notification keys (no RuStore calls: the notifications used are ignored types)."""
    _, app, settings = build_emulator(make_settings())
    return app, settings


def webhook_body(app, notification_id: str) -> bytes:  # type: ignore[no-untyped-def]
    content = {"app_id": app.app_id, "notification_type": "SOMETHING_NEW", "data": json.dumps({"x": 1})}
    return json.dumps({"id": notification_id, "timestamp": "2026-11-26T10:38:58.619Z",
                       "payload": encrypt_payload(content, app.notification_key_b64)}).encode()


async def test_the_webhook_answers_5xx_while_the_store_is_down_and_is_stored_on_redelivery(over_the_wire):
    app, settings = webhook_settings()
    env = await over_the_wire(settings=settings)
    body = webhook_body(app, "note-1")
    store_failed = REGISTRY.get_sample_value("webhooks_total", {"outcome": "store_failed"}) or 0.0
    env.wire.hung = True
    resp = await env.api.post("/api/webhooks/rustore", data=body)
    assert_database_unavailable(resp)  # RuStore redelivers for 36 h
    assert env.wire.unanswered >= 1
    assert REGISTRY.get_sample_value("webhooks_total", {"outcome": "store_failed"}) == store_failed + 1
    env.wire.hung = False
    resp = await until_ok(lambda: env.api.post("/api/webhooks/rustore", data=body))
    assert resp.json == {"status": "accepted", "id": "note-1"}
    stored = await env.ctx.db[webhooks.COLLECTION].find({}).to_list(None)
    assert [e["status"] for e in stored] == [webhooks.IGNORED]  # stored once, then acknowledged


async def test_a_webhook_stored_but_unanswered_is_never_acknowledged_before_it_is_stored(over_the_wire):
    app, settings = webhook_settings()
    env = await over_the_wire(settings=settings)
    body = webhook_body(app, "note-2")
    # The insert lands, but every answer is lost until the operation timeout: the outcome is unknown to us.
    fault = env.wire.inject(Fault("insert", webhooks.COLLECTION, "hang_up_after", times=1000))
    resp = await env.api.post("/api/webhooks/rustore", data=body)
    assert_database_unavailable(resp)
    assert env.wire.count("insert", webhooks.COLLECTION) == 1 and fault.hits >= 1
    fault.times = fault.hits  # the network heals
    resp = await env.api.post("/api/webhooks/rustore", data=body)  # RuStore's redelivery
    assert (resp.status, resp.json) == (200, {"status": "duplicate", "id": "note-2"})
    assert await env.ctx.db[webhooks.COLLECTION].count_documents({}) == 1


async def test_jobs_skip_their_run_with_one_log_line_while_mongodb_is_down_and_run_when_it_is_back(over_the_wire):
    env = await over_the_wire()
    job = find_job("ledger-repair")
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(message.record["message"]), level="INFO")
    try:
        before = unavailable("job")
        env.wire.hung = True
        outcome = await run_job(env.ctx, job)
        assert (outcome.outcome, outcome.summary["reason"]) == ("skipped", "database_unavailable")
        assert env.wire.unanswered >= 1
        assert unavailable("job") - before == 1
        assert lines == ["job ledger-repair skipped"]
        env.wire.hung = False
        await asyncio.sleep(1.0)  # the driver's next heartbeat finds the server again
        assert (await run_job(env.ctx, job)).outcome == "ok"
    finally:
        logger.remove(sink)
