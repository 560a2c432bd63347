"""Logs: one JSON line per API call with the request facts, and no secret ever written."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from loguru import logger

from core.logs import configure_logging, scrub_text, scrub_value
from tests.handlers.test_auth import PASSWORD


@pytest.fixture
def log_lines():
    lines: list[str] = []
    configure_logging("DEBUG", json_lines=True, sink=lines.append)
    yield lines
    logger.remove()
    logger.add(sys.stderr)
    logging.basicConfig(handlers=[], force=True)


def test_scrub_replaces_credentials_in_text_and_fields():
    text = scrub_text('password=hunter22 Authorization: Bearer abc.def.ghi {"refreshToken": "rt_123"}')
    assert "hunter22" not in text and "abc.def.ghi" not in text and "rt_123" not in text
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    assert jwt not in scrub_text(f"token {jwt} leaked")
    fields = scrub_value("extra", {"password": "p", "nested": {"private_key": "k", "ok": "fine"}, "list": ["x"]})
    assert fields == {"password": "[redacted]", "nested": {"private_key": "[redacted]", "ok": "fine"}, "list": ["x"]}


async def test_each_api_call_is_logged_once_as_json_with_request_facts(api, log_lines):
    user = await api.register()
    await api.get("/api/user/profile", token=user["accessToken"], headers={"X-Request-ID": "trace-1"})
    records = [json.loads(line) for line in log_lines]
    access = [r for r in records if r.get("path") == "/api/user/profile"]
    assert len(access) == 1
    record = access[0]
    assert record["request_id"] == "trace-1" and record["method"] == "GET" and record["status"] == 200
    assert record["user_id"] == user["userId"]
    assert isinstance(record["duration_ms"], float) and record["level"] == "INFO"
    assert record["ts"].endswith("Z")


async def test_passwords_and_tokens_never_reach_the_logs(api, log_lines):
    user = await api.register(password=PASSWORD)
    refreshed = (await api.post("/api/auth/refresh", {"refreshToken": user["refreshToken"]})).json
    await api.post("/api/auth/login", {"email": user["email"], "password": "wrong password 9"})
    await api.get("/api/user/profile", token=refreshed["accessToken"])
    await api.get("/api/user/profile?token=" + refreshed["accessToken"])
    logger.info("debugging {}", {"refreshToken": refreshed["refreshToken"], "password": PASSWORD})
    logger.bind(authorization="Bearer " + refreshed["accessToken"]).warning("careless call")
    output = "\n".join(log_lines)
    assert output.count("\n") >= 5
    for secret in (PASSWORD, "wrong password 9", user["accessToken"], user["refreshToken"],
                   refreshed["accessToken"], refreshed["refreshToken"]):
        assert secret not in output


async def test_unhandled_errors_log_a_traceback_with_the_request_id(start_server, log_lines):
    from mongomock_motor import AsyncMongoMockClient

    from tests.support.faults import FaultyClient

    service, api = await start_server(mongo=FaultyClient(AsyncMongoMockClient(tz_aware=True)))
    service.ctx.db.fail("users", "insert_one", RuntimeError("boom in store"))
    await api.post("/api/auth/register", {"email": "x@example.com", "password": PASSWORD},
                   headers={"X-Request-ID": "req-500"})
    records = [json.loads(line) for line in log_lines]
    errors = [r for r in records if r["message"] == "unhandled error"]
    assert len(errors) == 1 and errors[0]["request_id"] == "req-500"
    assert "RuntimeError: boom in store" in errors[0]["exception"]
    assert PASSWORD not in "\n".join(log_lines)
