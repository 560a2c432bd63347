"""Sentry: unhandled errors reach a Sentry server with tokens and passwords scrubbed; no DSN means off."""

from __future__ import annotations

import asyncio
import gzip
import json

import pytest
import sentry_sdk
import tornado.web
from mongomock_motor import AsyncMongoMockClient

from core.sentry import init_sentry, scrub_event
from tests.conftest import make_settings
from tests.support.faults import FaultyClient


class EnvelopeSink(tornado.web.RequestHandler):
    """A fake Sentry ingest endpoint that keeps every envelope it receives."""

    def initialize(self, received: list) -> None:
        self.received = received

    def post(self, project: str) -> None:
        body = self.request.body
        if self.request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.received.append(body.decode("utf-8", "replace"))
        self.write("{}")


@pytest.fixture
async def sentry_server():
    received: list[str] = []
    app = tornado.web.Application([(r"/api/(\d+)/envelope/", EnvelopeSink, {"received": received})])
    server = app.listen(0, "127.0.0.1")
    port = next(iter(server._sockets.values())).getsockname()[1]
    yield f"http://publickey@127.0.0.1:{port}/1", received
    server.stop()
    await server.close_all_connections()


def test_without_a_dsn_sentry_is_not_started():
    assert init_sentry(make_settings()) is False


async def test_unhandled_errors_are_reported_without_secrets(start_server, sentry_server):
    dsn, received = sentry_server
    settings = make_settings(sentry_dsn=dsn)
    assert init_sentry(settings) is True
    try:
        service, api = await start_server(mongo=FaultyClient(AsyncMongoMockClient(tz_aware=True)), settings=settings)
        service.ctx.db.fail("users", "insert_one", RuntimeError("store exploded"))
        password = "my secret password 1"
        resp = await api.post("/api/auth/register", {"email": "s@example.com", "password": password},
                              headers={"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"})
        assert resp.status == 500
        await asyncio.to_thread(sentry_sdk.flush, 5)
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.05)
        envelope = "\n".join(received)
        assert "store exploded" in envelope and "RuntimeError" in envelope
        assert password not in envelope and "eyJhbGciOiJIUzI1NiJ9" not in envelope
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init(dsn=None)


def test_scrub_event_redacts_headers_bodies_and_frame_variables():
    event = {"request": {"headers": {"Authorization": "Bearer abc", "X-Ok": "1"}, "data": {"password": "p"},
                         "query_string": "token=abc"},
             "exception": {"values": [{"value": "refreshToken=rt_123 failed",
                                       "stacktrace": {"frames": [{"vars": {"password": "p", "n": 1}}]}}]}}
    cleaned = json.dumps(scrub_event(event))
    assert "abc" not in cleaned and "rt_123" not in cleaned and '"p"' not in cleaned and '"X-Ok": "1"' in cleaned
